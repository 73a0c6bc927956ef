//! Reads what Hugging Face sent to the redirect URI.

use connector_api::{ConnectorError, ErrorCode};
use serde_json::{Value, json};

use crate::scrub::Scrubber;
use crate::secret::Secret;

/// The authorization code, or `authorization_failed` when the provider sent an error or no code.
/// The provider's words are quoted without the callback's own `state` and `code`.
pub fn code(callback: &Value) -> Result<Secret, ConnectorError> {
    let text = |key: &str| callback.get(key).and_then(Value::as_str);
    let scrubber = ["state", "code"]
        .into_iter()
        .filter_map(text)
        .fold(Scrubber::default(), Scrubber::with);
    if let Some(error) = text("error") {
        let error = scrubber.quote(error);
        let description = text("error_description").map(|d| scrubber.quote(d));
        let message = match &description {
            Some(d) => format!("authorization failed: {error}: {d}"),
            None => format!("authorization failed: {error}"),
        };
        let data = json!({ "error": error, "error_description": description });
        return Err(ConnectorError::new(ErrorCode::AuthorizationFailed, message).with_data(data));
    }
    match text("code") {
        Some(code) if !code.is_empty() => Ok(Secret::new(code)),
        // The parameters' names only: their values include the state.
        _ => {
            let names: Vec<&String> = callback
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            Err(
                ConnectorError::new(ErrorCode::AuthorizationFailed, "callback has no `code`")
                    .with_data(json!({ "parameters": names })),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_s_words_are_quoted_without_the_state() {
        let callback = json!({"state": "the-state-value", "error": "access_denied",
            "error_description": "denied for state=the-state-value"});
        let e = code(&callback).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthorizationFailed);
        assert_eq!(
            e.message,
            "authorization failed: access_denied: denied for state=[redacted]"
        );
        assert!(!format!("{e:?}").contains("the-state-value"), "{e:?}");
        let e = code(&json!({"state": "the-state-value"})).unwrap_err();
        assert_eq!(e.data, Some(json!({"parameters": ["state"]})));
    }
}
