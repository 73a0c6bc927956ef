//! Faults below the HTTP semantics: a connection dropped mid-body, a body that trickles, a
//! redirect elsewhere.

use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::stream::{self, StreamExt as _};

/// What [`reset_mid_body`] sends before it drops the connection.
pub(crate) const RESET_PREFIX: &[u8] = b"{\"access_token\":\"";
/// Lets hyper flush the first chunk before the error, so the client sees a body cut short
/// rather than no answer at all.
const FLUSH_PAUSE: Duration = Duration::from_millis(50);
/// Largest normal answer [`trickle`] re-streams (normal answers are a few kB).
const MAX_TRICKLED: usize = 1 << 20;

/// `200`, [`RESET_PREFIX`], then a body error: hyper then aborts the connection without the
/// terminating chunk (an error of the body stream is how a handler makes hyper reset).
pub(crate) fn reset_mid_body() -> Response {
    let first = stream::once(async { Ok(Bytes::from_static(RESET_PREFIX)) });
    let broken = stream::once(async {
        tokio::time::sleep(FLUSH_PAUSE).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "hub-sandbox: injected reset mid-body",
        ))
    });
    let mut response = Response::new(Body::from_stream(first.chain(broken)));
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, json);
    response
}

/// `response` with the same status and headers, its body sent `chunk` bytes every `every`.
pub(crate) async fn trickle(response: Response, chunk: usize, every: Duration) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_TRICKLED).await.unwrap_or_default();
    // The length is known but the body is a stream: hyper would otherwise send it chunked and
    // the client could not tell a short body from a slow one.
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    let chunks: Vec<Bytes> = bytes
        .chunks(chunk.max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    let paced = stream::iter(chunks.into_iter().enumerate()).then(move |(i, part)| async move {
        if i > 0 {
            tokio::time::sleep(every).await;
        }
        Ok::<_, std::convert::Infallible>(part)
    });
    Response::from_parts(parts, Body::from_stream(paced))
}

/// `status` (302 if not a redirect code) to `location`, empty body.
pub(crate) fn redirect(location: &str, status: u16) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::FOUND);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
