//! The edge between the sans-IO sync sessions and whatever carries their requests: plain data
//! for a request and its answer, the [`HttpTransport`] trait a carrier implements, and the one
//! reading of a refused answer into an [`Error`].
//!
//! Sessions never see a socket: they hand out [`HttpRequest`]s and are fed [`HttpResponse`]s or
//! a [`TransportError`]. The core's own carrier is reqwest (`reqwest_transport`); an app may
//! carry requests over its own stack ([`crate::sync::SyncClient::with_transport`]), and tests
//! carry them to the server's logic in the same process.

use std::future::Future;
use std::pin::Pin;

use quartier_protocol::{ErrorBody, PROTOCOL_VERSION};

use crate::error::Error;

/// The HTTP methods the protocol uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// One request to the server, relative to its base address.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    /// Path and query, starting with `/` (`/v1/sync`).
    pub path: String,
    /// The bearer token, if the endpoint needs one. A credential: never log it.
    pub bearer: Option<String>,
    /// `Content-Type` of `body`; `None` sends no body.
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
    /// `Range` (`bytes=N-`) for a download resumed at byte N.
    pub range_from: Option<u64>,
    /// A counselling conversation's access token, sent as `quartier-access` on its attachment
    /// endpoints. A credential too: never log it.
    pub access: Option<String>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_bytes", &self.body.len())
            .field("range_from", &self.range_from)
            .finish_non_exhaustive()
    }
}

impl HttpRequest {
    /// A request with a body in the wire format (CBOR + zstd).
    pub fn wire(method: HttpMethod, path: impl Into<String>, bearer: Option<&str>, body: Vec<u8>) -> Self {
        HttpRequest {
            method,
            path: path.into(),
            bearer: bearer.map(str::to_owned),
            content_type: Some(quartier_protocol::CONTENT_TYPE),
            body,
            range_from: None,
            access: None,
        }
    }

    /// A request without a body.
    pub fn bare(method: HttpMethod, path: impl Into<String>, bearer: Option<&str>) -> Self {
        HttpRequest {
            method,
            path: path.into(),
            bearer: bearer.map(str::to_owned),
            content_type: None,
            body: Vec::new(),
            range_from: None,
            access: None,
        }
    }
}

/// The server's answer, whole: status, the headers the protocol reads, body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// `Retry-After` as sent (a `429` carries delay-seconds).
    pub retry_after: Option<String>,
    /// `Content-Length` as sent (a blob's `HEAD` answer states its size in it).
    pub content_length: Option<u64>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request that got no whole answer: no link, a timeout, an answer cut off. Retrying later
/// may succeed; the session reads it as [`Error::Offline`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError(pub String);

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Offline(e.0)
    }
}

/// What the transport's future yields.
pub type TransportResult = std::result::Result<HttpResponse, TransportError>;

/// A future a transport answers with (boxed, so that the trait can be held as `dyn`).
pub type TransportFuture<'a> = Pin<Box<dyn Future<Output = TransportResult> + Send + 'a>>;

/// A future yielding the next piece of a streamed body (`None` at its end).
pub type PieceFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Option<Vec<u8>>, TransportError>> + Send + 'a>>;

/// The body of an answer, piece by piece as it arrives.
pub trait BodyStream: Send {
    fn next_piece(&mut self) -> PieceFuture<'_>;
}

/// An answer whose body is still arriving (a download).
pub struct StreamedResponse {
    pub status: u16,
    pub body: Box<dyn BodyStream>,
}

/// What the transport's streaming future yields.
pub type StreamingFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<StreamedResponse, TransportError>> + Send + 'a>>;

/// Carries one request to the server and brings back its answer. The core's carrier is reqwest;
/// an app may carry requests over its own HTTP stack, and tests carry them in-process. It
/// decides nothing: every retry, pause and refusal is the session's.
pub trait HttpTransport: Send + Sync {
    fn send(&self, request: HttpRequest) -> TransportFuture<'_>;

    /// Sends and hands over the body as it arrives, so that a download cut halfway keeps what
    /// came. A transport that cannot stream hands the whole body over as one piece (a cut then
    /// costs the whole answer).
    fn send_streaming(&self, request: HttpRequest) -> StreamingFuture<'_> {
        Box::pin(async move {
            let response = self.send(request).await?;
            Ok(StreamedResponse {
                status: response.status,
                body: Box::new(Whole(Some(response.body))),
            })
        })
    }
}

/// A whole body as a stream of one piece.
struct Whole(Option<Vec<u8>>);

impl BodyStream for Whole {
    fn next_piece(&mut self) -> PieceFuture<'_> {
        let piece = self.0.take();
        Box::pin(std::future::ready(Ok(piece)))
    }
}

/// Wait after a `429` without a readable `Retry-After`.
pub(crate) const DEFAULT_RETRY_AFTER_SECS: u64 = 60;
/// Longest wait a `Retry-After` may impose (a server asking for more is asked again then).
const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// Seconds of a `Retry-After` header (delay-seconds, what Quartier servers send), bounded.
pub(crate) fn retry_after_secs(header: Option<&str>) -> u64 {
    header
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
        .clamp(1, MAX_RETRY_AFTER_SECS)
}

/// The typed error of a refused answer, from its status, `Retry-After` and `ErrorBody` (if it
/// has one). The one reading of refusals, for every session and call.
pub(crate) fn refusal(response: &HttpResponse) -> Error {
    let status = response.status;
    let error: Option<ErrorBody> = quartier_protocol::decode(&response.body, 64 * 1024).ok();
    let (code, message) = error
        .as_ref()
        .map(|e| (e.code.clone(), e.message.clone()))
        .unwrap_or_else(|| ("unknown".into(), format!("HTTP {status}")));
    match (status, code.as_str()) {
        (401, _) => Error::Unauthorized,
        (429, _) => Error::RateLimited {
            retry_after_secs: retry_after_secs(response.retry_after.as_deref()),
        },
        (_, "revoked") => Error::DeviceRevoked,
        (_, "protocol_version") => Error::ProtocolMismatch {
            ours: PROTOCOL_VERSION,
            theirs: error.map(|e| e.protocol_versions).unwrap_or_default(),
        },
        _ => Error::Server {
            status,
            code,
            message,
        },
    }
}

/// The answer's body decoded as a wire message, or the refusal it carries.
pub(crate) fn decode_answer<T: serde::de::DeserializeOwned>(
    response: &HttpResponse,
) -> crate::error::Result<T> {
    if !response.is_success() {
        return Err(refusal(response));
    }
    quartier_protocol::decode(&response.body, quartier_protocol::MAX_DECODED_BYTES)
        .map_err(|e| Error::MalformedResponse(e.to_string()))
}

/// A message in the wire format, for a request body.
pub(crate) fn encode<T: serde::Serialize>(message: &T) -> crate::error::Result<Vec<u8>> {
    quartier_protocol::encode(message).map_err(|e| Error::MalformedResponse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: retry_after.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn retry_after_is_read_and_bounded() {
        assert_eq!(retry_after_secs(Some(" 7 ")), 7);
        assert_eq!(retry_after_secs(Some("0")), 1);
        assert_eq!(retry_after_secs(Some("999999")), MAX_RETRY_AFTER_SECS);
        assert_eq!(
            retry_after_secs(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            DEFAULT_RETRY_AFTER_SECS
        );
        assert_eq!(retry_after_secs(None), DEFAULT_RETRY_AFTER_SECS);
        assert!(matches!(
            refusal(&answer(429, Some("5"))),
            Error::RateLimited { retry_after_secs: 5 }
        ));
        assert!(matches!(refusal(&answer(401, None)), Error::Unauthorized));
        assert!(matches!(
            refusal(&answer(500, None)),
            Error::Server { status: 500, .. }
        ));
    }
}
