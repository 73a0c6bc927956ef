//! Sign-in failures: their HTTP status, their JSON and HTML forms, and their one log line.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use connector_api::{ConnectorError, ErrorCode};
use serde_json::json;

use crate::pages;

/// The step of the sign-in that failed, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SignIn,
    Callback,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::SignIn => "sign_in",
            Step::Callback => "callback",
        }
    }
}

/// Failures the broker itself detects (as opposed to the connector's [`ConnectorError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// No instance with this id.
    UnknownConnector,
    /// The callback carries no state, or one this broker never issued (forged), or one issued
    /// for another connector.
    InvalidState,
    /// The state was issued, but its lifetime (10 minutes) has passed.
    StateExpired,
    /// The state was already used: a replayed callback.
    StateReplayed,
    /// The browser sent no sign-in cookie (other browser, cookies blocked, or a forged link).
    CookieMissing,
    /// The browser's sign-in cookie is not the one the state was issued to.
    CookieMismatch,
    /// The callback presents more than one sign-in cookie: one may have been planted by a
    /// site that can set cookies for this host (cookie tossing). Nobody is signed in.
    CookieConflict,
    /// A callback parameter appears twice.
    InvalidRequest,
    /// The pending sign-in store failed.
    StoreUnavailable,
    /// This client started more sign-ins than its rate allows.
    SignInRateLimited,
    /// The in-memory store holds as many sign-ins as it may (`[sign_in] max_pending`).
    TooManyPending,
}

impl HostError {
    /// The code in JSON responses and logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::UnknownConnector => "unknown_connector",
            Self::InvalidState => "invalid_state",
            Self::StateExpired => "state_expired",
            Self::StateReplayed => "state_replayed",
            Self::CookieMissing => "cookie_missing",
            Self::CookieMismatch => "cookie_mismatch",
            Self::CookieConflict => "cookie_conflict",
            Self::InvalidRequest => "invalid_request",
            Self::StoreUnavailable => "store_unavailable",
            Self::SignInRateLimited => "sign_in_rate_limited",
            Self::TooManyPending => "too_many_pending_sign_ins",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::UnknownConnector => StatusCode::NOT_FOUND,
            Self::StoreUnavailable | Self::TooManyPending => StatusCode::SERVICE_UNAVAILABLE,
            Self::SignInRateLimited => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::UnknownConnector => "There is no connector with this id.",
            Self::InvalidState => "This sign-in link is not valid. Please start again.",
            Self::StateExpired => "This sign-in took too long and has expired. Please start again.",
            Self::StateReplayed => "This sign-in was already completed. Please start again.",
            Self::CookieMissing => {
                "This sign-in was started in another browser, or cookies are blocked."
            }
            Self::CookieMismatch => "This sign-in was started in another browser session.",
            Self::CookieConflict => {
                "This browser sent two sign-in cookies, so nobody was signed in. \
                 Clear this site's cookies and start again."
            }
            Self::InvalidRequest => "The callback repeats a parameter.",
            Self::StoreUnavailable => "Sign-in is unavailable right now. Please try again.",
            Self::SignInRateLimited => {
                "Too many sign-ins were started from this address. Please wait a moment."
            }
            Self::TooManyPending => {
                "Too many sign-ins are in progress right now. Please try again in a minute."
            }
        }
    }
}

/// The HTTP status for a connector error code.
///
/// The user's or provider's refusal is the client's problem (400/401); throttling is 429; a
/// provider that failed or answered nonsense is a bad gateway (502); anything else (a connector
/// misconfigured or unable to do what was asked) is the broker's own fault (500).
pub fn status_for(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        AuthorizationFailed | InvalidRequestParameters | InsufficientRequestParameters => {
            StatusCode::BAD_REQUEST
        }
        SocialAuthCodeInvalid | SocialAccessTokenInvalid | SocialIdTokenInvalid => {
            StatusCode::UNAUTHORIZED
        }
        RateLimitExceeded | UsageLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        General | InvalidResponse | InvalidCertificate => StatusCode::BAD_GATEWAY,
        InvalidMetadata | UnexpectedType | InvalidConfigGuard | InvalidConfig
        | TemplateNotFound | TemplateNotSupported | NotImplemented => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// A failed sign-in step, ready to log and render.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for `Retry-After` on 429.
    pub retry_after: Option<u64>,
    /// The plugin file whose connector failed, when a connector did: logged, so that a
    /// plugin's fault (a panic, say) is traced to its file.
    pub plugin: Option<String>,
}

impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        Self {
            status: e.status(),
            code: e.code(),
            message: e.message().into(),
            retry_after: None,
            plugin: None,
        }
    }
}

impl From<&ConnectorError> for Failure {
    fn from(e: &ConnectorError) -> Self {
        Self {
            status: status_for(e.code),
            code: e.code.as_str(),
            // Connectors keep secrets out of messages (a connector-api rule).
            message: e.message.clone(),
            retry_after: e.data.as_ref().and_then(|d| d["retryAfterSecs"].as_u64()),
            plugin: None,
        }
    }
}

impl Failure {
    /// A connector's failure, naming the plugin file that made the connector.
    pub fn in_plugin(e: &ConnectorError, file: &std::path::Path) -> Self {
        Self {
            plugin: Some(file.display().to_string()),
            ..Self::from(e)
        }
    }

    /// The same failure, answered with `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Logs the failure (once, here) and renders it as JSON or an HTML page.
    pub fn respond(self, connector: &str, step: Step, json: bool, demo: bool) -> Response {
        tracing::warn!(
            connector,
            step = step.as_str(),
            code = self.code,
            status = self.status.as_u16(),
            plugin = self.plugin.as_deref(),
            message = ?self.message,
            "sign-in failed"
        );
        let mut response = match json {
            true => {
                let body = json!({"error": {"code": self.code, "message": self.message}});
                (self.status, axum::Json(body)).into_response()
            }
            false => (self.status, pages::error(&self, demo)).into_response(),
        };
        // An error page may be for a callback URL that holds a code: never kept by a cache.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Whether the client asked for JSON (`Accept: application/json`).
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_statuses() {
        assert_eq!(status_for(ErrorCode::AuthorizationFailed), 400);
        for code in [
            ErrorCode::SocialAuthCodeInvalid,
            ErrorCode::SocialAccessTokenInvalid,
            ErrorCode::SocialIdTokenInvalid,
        ] {
            assert_eq!(status_for(code), 401);
        }
        assert_eq!(status_for(ErrorCode::RateLimitExceeded), 429);
        assert_eq!(status_for(ErrorCode::General), 502);
        assert_eq!(status_for(ErrorCode::InvalidResponse), 502);
        assert_eq!(status_for(ErrorCode::InvalidConfig), 500);
    }
}
