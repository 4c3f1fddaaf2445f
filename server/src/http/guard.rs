//! What every request passes before a handler, and every error answer after it
//! (`docs/server.md`, "On the open internet"):
//!
//! - a request id, in the tracing span of everything the request logs and in the answer's
//!   `x-request-id` header (and in error bodies), so an operator finds the log lines a person
//!   reports;
//! - a `Content-Length` above the body limit is answered `413` before a byte of it is read;
//! - rate limits per client address and per device (`governor` token buckets), stricter for
//!   registration and invite redemption, answered `429` with `Retry-After`;
//! - an overall deadline per request (headers received → answer);
//! - error bodies rendered for whoever asks: CBOR `ErrorBody` for devices, JSON or plain text
//!   for a browser or `curl`; a server error's text never leaves the server (it is logged under
//!   the request id).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use quartier_protocol::{ErrorBody, CONTENT_TYPE};
use tracing::Instrument;

use crate::config::RateLimits;
use crate::error::ServerError;
use crate::state::AppState;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The request id, for handlers that want it (an extension of every request).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The rate limiters of a server.
pub struct Limiters {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_device: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    registrations: Option<DefaultKeyedRateLimiter<IpAddr>>,
    redemptions_by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    redemptions_by_device: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
}

fn keyed<K: std::hash::Hash + Eq + Clone>(n: u32, period: Duration) -> Option<DefaultKeyedRateLimiter<K>> {
    let burst = NonZeroU32::new(n)?;
    let quota = Quota::with_period(period / n)?.allow_burst(burst);
    Some(DefaultKeyedRateLimiter::keyed(quota))
}

impl Limiters {
    pub fn new(rate: &RateLimits) -> Limiters {
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        Limiters {
            per_address: keyed(rate.per_address_per_minute, MINUTE),
            per_device: keyed(rate.per_device_per_minute, MINUTE),
            registrations: keyed(rate.registrations_per_hour, HOUR),
            redemptions_by_address: keyed(rate.redemptions_per_hour, HOUR),
            redemptions_by_device: keyed(rate.redemptions_per_hour, HOUR),
        }
    }

    /// Forgets buckets that are full again, so memory follows the clients of the last hour.
    pub fn forget_idle(&self) {
        fn tidy<K: std::hash::Hash + Eq + Clone>(l: &Option<DefaultKeyedRateLimiter<K>>) {
            if let Some(l) = l {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        tidy(&self.per_address);
        tidy(&self.per_device);
        tidy(&self.registrations);
        tidy(&self.redemptions_by_address);
        tidy(&self.redemptions_by_device);
    }
}

/// `Ok` or the wait until the key's bucket has a token again.
fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Option<DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), Duration> {
    match limiter {
        Some(l) => l
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        None => Ok(()),
    }
}

/// The client's address as limits see it: the peer, or the last `X-Forwarded-For` entry when
/// the operator trusts a proxy. IPv6 addresses count per /64 (what one subscriber gets).
fn client_address(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = || {
        let value = req.headers().get_all("x-forwarded-for").iter().next_back()?;
        value
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse::<IpAddr>()
            .ok()
    };
    let ip = if trust_forwarded_for { forwarded() } else { None }.or_else(|| {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    })
}

/// The device a request speaks for, as limits see it: the BLAKE3 of its bearer token (no
/// database read; an unknown token is limited like a known one).
fn device_key(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = super::auth::bearer_token(value)?;
    Some(*blake3::hash(token.as_bytes()).as_bytes())
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ServerError::TooManyRequests {
        retry_after_secs: secs.max(1),
    }
    .into_response()
}

/// The middleware of every request (see the module documentation).
pub async fn guard(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %logged_path(req.uri().path()));
    let render = Render::of(req.headers());
    req.extensions_mut().insert(RequestId(id.clone()));
    let response = async {
        if let Some(response) = too_large(&state, &mut req) {
            return response;
        }
        if let Some(response) = admit(&state, &req) {
            return response;
        }
        let deadline = Duration::from_millis(state.config.request_timeout_ms);
        match tokio::time::timeout(deadline, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ServerError::Timeout.into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    let mut response = render.error_body(response, &id).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

/// Bytes of a refused body the server still reads (and throws away) after answering `413`, so
/// a client that goes on sending a body slightly too large reads the answer instead of a reset
/// connection. A larger one is not read at all: its connection is closed.
const DRAIN_BYTES: u64 = 16 * 1024 * 1024;

/// A declared body above the limit: `413` at once, before the handler and before a byte of the
/// body is kept.
fn too_large(state: &AppState, req: &mut Request) -> Option<Response> {
    let limit = state
        .config
        .max_body_bytes
        .max(quartier_protocol::blobs::BLOB_CHUNK_BYTES as usize + 1);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())?;
    if declared <= limit as u64 {
        return None;
    }
    let mut response = ServerError::BodyTooLarge { limit }.into_response();
    if declared <= limit as u64 + DRAIN_BYTES {
        let body = std::mem::take(req.body_mut());
        let idle = Duration::from_millis(state.config.body_timeout_ms);
        tokio::spawn(drain(body, idle));
    } else {
        // The body will not be read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Some(response)
}

/// Reads a body to its end and drops it, giving up when it stalls for `idle` or passes
/// [`DRAIN_BYTES`] past the limit (the length was declared; hyper enforces it).
async fn drain(body: Body, idle: Duration) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(idle, stream.next()).await {}
}

/// Checks before a handler runs: the rate limits.
fn admit(state: &AppState, req: &Request) -> Option<Response> {
    let limiters = &state.limiters;
    let address = client_address(req, state.config.trust_forwarded_for);
    let device = device_key(req.headers());
    let path = req.uri().path();
    let post = req.method() == Method::POST;
    let mut checks: Vec<Result<(), Duration>> = Vec::with_capacity(4);
    if let Some(a) = &address {
        checks.push(check(&limiters.per_address, a));
        if post && path == "/v1/devices" {
            checks.push(check(&limiters.registrations, a));
        }
        if post && path.starts_with("/v1/invites/redeem") {
            checks.push(check(&limiters.redemptions_by_address, a));
        }
    }
    if let Some(d) = &device {
        checks.push(check(&limiters.per_device, d));
        if post && path.starts_with("/v1/invites/redeem") {
            checks.push(check(&limiters.redemptions_by_device, d));
        }
    }
    let wait = checks.into_iter().filter_map(Result::err).max()?;
    tracing::info!(?address, wait_ms = wait.as_millis() as u64, "rate limited");
    Some(too_many(wait))
}

/// How an error body is written for this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Render {
    Cbor,
    Json,
    Text,
}

impl Render {
    /// What the request asks for: an `Accept` naming the CBOR type, JSON or text wins; without
    /// one (or with `*/*`), a request that sent CBOR or a bearer token (a device, of any version)
    /// gets CBOR and anyone else plain text.
    fn of(headers: &HeaderMap) -> Render {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        if accept.contains(CONTENT_TYPE) {
            return Render::Cbor;
        }
        if accept.contains("application/json") {
            return Render::Json;
        }
        if accept.contains("text/") {
            return Render::Text;
        }
        let sent_cbor = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(CONTENT_TYPE));
        if sent_cbor || headers.contains_key(header::AUTHORIZATION) {
            Render::Cbor
        } else {
            Render::Text
        }
    }

    /// Rewrites an error answer: the request id in, a server error's text out, the body in the
    /// form asked for. Successful answers pass untouched.
    async fn error_body(self, response: Response, id: &str) -> Response {
        let status = response.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
        let mut error: ErrorBody =
            quartier_protocol::decode(&bytes, 64 * 1024).unwrap_or_else(|_| ErrorBody {
                code: fallback_code(status).into(),
                message: status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_owned(),
                protocol_versions: vec![],
                request_id: None,
            });
        if status.is_server_error() {
            error.code = "internal".into();
            error.message = format!(
                "the server could not answer this request; its operator finds the details in the log under request id {id}"
            );
        }
        error.request_id = Some(id.to_owned());
        let (content_type, body) = match self {
            Render::Cbor => (
                CONTENT_TYPE,
                quartier_protocol::encode(&error).unwrap_or_default(),
            ),
            Render::Json => ("application/json", serde_json::to_vec(&error).unwrap_or_default()),
            Render::Text => (
                "text/plain; charset=utf-8",
                format!(
                    "{} {}: {}\nrequest id: {id}\n",
                    status.as_u16(),
                    error.code,
                    error.message
                )
                .into_bytes(),
            ),
        };
        parts.headers.remove(header::CONTENT_LENGTH);
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Response::from_parts(parts, Body::from(body))
    }
}

fn fallback_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// The path as logs show it: a calendar feed's path is its secret, so it is left out.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/calendar/") {
        "/calendar/…"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn devices_get_cbor_and_people_get_text_or_json() {
        assert_eq!(Render::of(&headers(&[])), Render::Text);
        assert_eq!(Render::of(&headers(&[("accept", "*/*")])), Render::Text);
        assert_eq!(
            Render::of(&headers(&[(
                "accept",
                "text/html,application/xhtml+xml,*/*;q=0.8"
            )])),
            Render::Text
        );
        assert_eq!(
            Render::of(&headers(&[("accept", "application/json")])),
            Render::Json
        );
        assert_eq!(Render::of(&headers(&[("accept", CONTENT_TYPE)])), Render::Cbor);
        assert_eq!(
            Render::of(&headers(&[("content-type", CONTENT_TYPE), ("accept", "*/*")])),
            Render::Cbor
        );
        assert_eq!(
            Render::of(&headers(&[("authorization", "Bearer x")])),
            Render::Cbor
        );
    }

    #[test]
    fn a_limit_refuses_after_its_burst_and_names_the_wait() {
        let limiter = keyed::<u8>(3, Duration::from_secs(3600));
        for _ in 0..3 {
            assert!(check(&limiter, &1).is_ok());
        }
        let wait = check(&limiter, &1).expect_err("the fourth try is refused");
        assert!(
            wait > Duration::from_secs(1000) && wait <= Duration::from_secs(1200),
            "{wait:?}"
        );
        assert!(check(&limiter, &2).is_ok(), "another key has its own bucket");
        assert!(check(&keyed::<u8>(0, Duration::from_secs(1)), &1).is_ok());
    }
}
