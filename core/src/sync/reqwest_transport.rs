//! The core's own carrier of requests: reqwest over rustls. It only moves bytes; what a request
//! is and what its answer means is the sessions' (`session`, `http`).

use std::sync::Arc;
use std::time::Duration;

use quartier_protocol::CONTENT_TYPE;

use super::http::{
    BodyStream, HttpMethod, HttpRequest, HttpResponse, HttpTransport, PieceFuture, StreamedResponse,
    StreamingFuture, TransportError, TransportFuture,
};
use crate::error::{Error, Result};

/// How every connection to a server is made: its connect timeout and the certificate
/// authorities trusted besides the system's.
pub(crate) fn http_builder(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(20));
    for root in roots {
        http = http.add_root_certificate(root.clone());
    }
    http
}

/// Requests to one server over reqwest.
#[derive(Clone, Debug)]
pub(crate) struct ReqwestTransport {
    http: reqwest::Client,
    base: String,
}

impl ReqwestTransport {
    /// A carrier for the sync and account endpoints: whole answers within two minutes, and the
    /// wire format asked for in error bodies too.
    pub(crate) fn new(base: &str, roots: &Arc<[reqwest::Certificate]>) -> Result<Self> {
        let mut accept = reqwest::header::HeaderMap::new();
        accept.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static(CONTENT_TYPE),
        );
        let http = http_builder(roots)
            .timeout(Duration::from_secs(120))
            .default_headers(accept)
            .build()
            .map_err(|e| Error::invalid("server address", e.to_string()))?;
        Ok(ReqwestTransport {
            http,
            base: base.to_owned(),
        })
    }

    /// A carrier for media (`TransferQueue`): no overall timeout, since an original on a slow
    /// link takes long; a stalled link is noticed by the read timeout and resumed later.
    pub(crate) fn for_media(base: &str, roots: &[reqwest::Certificate]) -> Result<Self> {
        let http = http_builder(roots)
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::invalid("server address", e.to_string()))?;
        Ok(ReqwestTransport {
            http,
            base: base.to_owned(),
        })
    }

    /// Sends a request; the answer with its body still to read.
    async fn start(&self, request: HttpRequest) -> std::result::Result<reqwest::Response, TransportError> {
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .http
            .request(method, format!("{}{}", self.base, request.path));
        if let Some(token) = &request.bearer {
            builder = builder.bearer_auth(token);
        }
        if let Some(access) = &request.access {
            builder = builder.header(quartier_protocol::counselling::ACCESS_HEADER, access);
        }
        if let Some(from) = request.range_from {
            builder = builder.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        if let Some(content_type) = request.content_type {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(request.body);
        }
        builder.send().await.map_err(|e| TransportError(e.to_string()))
    }

    async fn exchange(&self, request: HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        let response = self.start(request).await?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status().as_u16();
        let retry_after = header(reqwest::header::RETRY_AFTER);
        let content_length = header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| TransportError(format!("the answer was cut off: {e}")))?;
        Ok(HttpResponse {
            status,
            retry_after,
            content_length,
            body: body.to_vec(),
        })
    }
}

impl HttpTransport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> TransportFuture<'_> {
        Box::pin(self.exchange(request))
    }

    fn send_streaming(&self, request: HttpRequest) -> StreamingFuture<'_> {
        Box::pin(async move {
            let response = self.start(request).await?;
            Ok(StreamedResponse {
                status: response.status().as_u16(),
                body: Box::new(Pieces(response)),
            })
        })
    }
}

/// A reqwest body, piece by piece.
struct Pieces(reqwest::Response);

impl BodyStream for Pieces {
    fn next_piece(&mut self) -> PieceFuture<'_> {
        Box::pin(async move {
            self.0
                .chunk()
                .await
                .map(|piece| piece.map(|bytes| bytes.to_vec()))
                .map_err(|e| TransportError(e.to_string()))
        })
    }
}
