//! The body of [`crate::Fault::EchoRequest`]: the request as a careless debug handler prints it.

use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::record::RecordedRequest;

/// How [`crate::Fault::EchoRequest`] wraps the echoed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EchoFormat {
    /// The dump as `text/plain`.
    Text,
    /// `{"error": "invalid_grant", "error_description": <dump>}` (an OAuth error body).
    InvalidGrant,
    /// `{"error": "server_error", "request": <dump>}`, as `application/json`: a body a client
    /// can only quote whole, JSON escapes included.
    Json,
}

/// Everything `request` carried, in two orders so that a client quoting only the start of a
/// text meets each part: [`EchoFormat::Text`] as on the wire (request line, headers, body),
/// then the credentials decoded; the JSON formats credentials and body first.
pub(crate) fn response(status: u16, format: EchoFormat, request: &RecordedRequest) -> Response {
    let line = match &request.query {
        Some(query) => format!("{} {}?{query} HTTP/1.1", request.method, request.path),
        None => format!("{} {} HTTP/1.1", request.method, request.path),
    };
    let headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let decoded = decoded_credentials(request);
    match format {
        EchoFormat::Text => {
            let dump = format!(
                "{line}\r\n{}\r\n\r\n{}\r\n\r\n{decoded}",
                headers.join("\r\n"),
                request.body
            );
            crate::faults::raw(status, dump, "text/plain")
        }
        EchoFormat::InvalidGrant | EchoFormat::Json => {
            let dump = format!(
                "{decoded} | {} | {line} | {}",
                request.body,
                headers.join(" | ")
            );
            let body = match format {
                EchoFormat::InvalidGrant => {
                    serde_json::json!({"error": "invalid_grant", "error_description": dump})
                }
                _ => serde_json::json!({"error": "server_error", "request": dump}),
            };
            crate::faults::raw(status, body.to_string(), "application/json")
        }
    }
}

/// The Basic credentials decoded (`client=id:secret`) and re-encoded as a form
/// (`client_id=…&client_secret=…`), or nothing without Basic authentication.
fn decoded_credentials(request: &RecordedRequest) -> String {
    let basic = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some(pair) = basic else {
        return String::new();
    };
    let (id, secret) = pair.split_once(':').unwrap_or((&pair, ""));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", id)
        .append_pair("client_secret", secret)
        .finish();
    format!("client={pair} {form}")
}
