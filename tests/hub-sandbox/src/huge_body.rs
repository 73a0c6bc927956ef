//! The body of [`crate::Fault::HugeBody`]: `{"padding":"xxx…"}` of an exact size.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

const PREFIX: &[u8] = b"{\"padding\":\"";
const SUFFIX: &[u8] = b"\"}";
/// Size of each streamed padding chunk.
const CHUNK: usize = 64 * 1024;
/// Padding shared by every chunk, so even a huge body costs no allocation.
static PADDING: [u8; CHUNK] = [b'x'; CHUNK];

/// A `200 application/json` response whose body is exactly `bytes` bytes long.
pub(crate) fn response(bytes: usize, chunked: bool) -> Response {
    let parts = parts(bytes);
    let body = if chunked {
        // A stream has no exact size hint, so hyper sends it chunked, without Content-Length.
        Body::from_stream(futures_util::stream::iter(parts.map(Ok::<_, Infallible>)))
    } else {
        // One buffer: hyper sets Content-Length from its exact size.
        Body::from(parts.flat_map(|part| part.to_vec()).collect::<Vec<u8>>())
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, json);
    response
}

/// The body as a lazy sequence of static slices: prefix, padding chunks, suffix.
fn parts(bytes: usize) -> impl Iterator<Item = Bytes> + Send + 'static {
    let framing = PREFIX.len() + SUFFIX.len();
    let (prefix, suffix, mut padding) = if bytes >= framing {
        (PREFIX, SUFFIX, bytes - framing)
    } else {
        (&b""[..], &b""[..], bytes)
    };
    let chunks = std::iter::from_fn(move || {
        let len = padding.min(CHUNK);
        padding -= len;
        (len > 0).then(|| Bytes::from_static(&PADDING[..len]))
    });
    std::iter::once(Bytes::from_static(prefix))
        .chain(chunks)
        .chain(std::iter::once(Bytes::from_static(suffix)))
        .filter(|part| !part.is_empty())
}

#[cfg(test)]
mod tests {
    use super::parts;

    fn body(bytes: usize) -> Vec<u8> {
        parts(bytes).flat_map(|part| part.to_vec()).collect()
    }

    #[test]
    fn bodies_have_the_exact_size_and_look_like_json() {
        for bytes in [0, 1, 13, 14, 15, 65_536, 65_550, 3 * 65_536 + 7] {
            let body = body(bytes);
            assert_eq!(body.len(), bytes);
            if bytes >= 14 {
                let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(value["padding"].as_str().map(str::len), Some(bytes - 14));
            }
        }
    }
}
