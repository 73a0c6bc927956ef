//! Reads what Hugging Face sent to the redirect URI.

use connector_api::{ConnectorError, ErrorCode};
use serde_json::{Value, json};

use crate::http::clean;
use crate::secret::Secret;

/// The authorization code, or `authorization_failed` when the provider sent an error or no code.
pub fn code(callback: &Value) -> Result<Secret, ConnectorError> {
    let text = |key: &str| callback.get(key).and_then(Value::as_str);
    if let Some(error) = text("error") {
        let description = text("error_description").map(clean);
        let message = match &description {
            Some(d) => format!("authorization failed: {}: {d}", clean(error)),
            None => format!("authorization failed: {}", clean(error)),
        };
        let data = json!({ "error": clean(error), "error_description": description });
        return Err(ConnectorError::new(ErrorCode::AuthorizationFailed, message).with_data(data));
    }
    match text("code") {
        Some(code) if !code.is_empty() => Ok(Secret::new(code)),
        _ => Err(
            ConnectorError::new(ErrorCode::AuthorizationFailed, "callback has no `code`")
                .with_data(callback.clone()),
        ),
    }
}
