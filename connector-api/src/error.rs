//! Connector errors, with Logto's connector error codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Logto's connector error codes (`@logto/connector-kit`), as the strings Logto uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Anything not covered below, including provider 5xx and timeouts.
    General,
    InvalidMetadata,
    UnexpectedType,
    InvalidConfigGuard,
    InvalidRequestParameters,
    InsufficientRequestParameters,
    /// The connector's config is wrong; the message names the field.
    InvalidConfig,
    InvalidCertificate,
    /// The provider answered with a body of the wrong shape.
    InvalidResponse,
    TemplateNotFound,
    TemplateNotSupported,
    /// The provider throttles; `data.retryAfterSecs` says how long to wait when known.
    RateLimitExceeded,
    UsageLimitExceeded,
    NotImplemented,
    /// The authorization code was refused (expired, used, wrong PKCE verifier, …).
    SocialAuthCodeInvalid,
    /// The access token was refused by the provider.
    #[serde(rename = "social_invalid_access_token")]
    SocialAccessTokenInvalid,
    /// The id_token failed verification.
    #[serde(rename = "social_invalid_id_token")]
    SocialIdTokenInvalid,
    /// The user or the provider refused the authorization.
    AuthorizationFailed,
}

impl ErrorCode {
    /// Every code, in Logto's order.
    pub const ALL: [ErrorCode; 18] = [
        Self::General,
        Self::InvalidMetadata,
        Self::UnexpectedType,
        Self::InvalidConfigGuard,
        Self::InvalidRequestParameters,
        Self::InsufficientRequestParameters,
        Self::InvalidConfig,
        Self::InvalidCertificate,
        Self::InvalidResponse,
        Self::TemplateNotFound,
        Self::TemplateNotSupported,
        Self::RateLimitExceeded,
        Self::UsageLimitExceeded,
        Self::NotImplemented,
        Self::SocialAuthCodeInvalid,
        Self::SocialAccessTokenInvalid,
        Self::SocialIdTokenInvalid,
        Self::AuthorizationFailed,
    ];

    /// The Logto code string, e.g. `social_auth_code_invalid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::InvalidMetadata => "invalid_metadata",
            Self::UnexpectedType => "unexpected_type",
            Self::InvalidConfigGuard => "invalid_config_guard",
            Self::InvalidRequestParameters => "invalid_request_parameters",
            Self::InsufficientRequestParameters => "insufficient_request_parameters",
            Self::InvalidConfig => "invalid_config",
            Self::InvalidCertificate => "invalid_certificate",
            Self::InvalidResponse => "invalid_response",
            Self::TemplateNotFound => "template_not_found",
            Self::TemplateNotSupported => "template_not_supported",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::UsageLimitExceeded => "usage_limit_exceeded",
            Self::NotImplemented => "not_implemented",
            Self::SocialAuthCodeInvalid => "social_auth_code_invalid",
            Self::SocialAccessTokenInvalid => "social_invalid_access_token",
            Self::SocialIdTokenInvalid => "social_invalid_id_token",
            Self::AuthorizationFailed => "authorization_failed",
        }
    }

    /// Parses a Logto code string; `None` for a string Logto does not define.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a connector: a Logto code, a human-readable message and optional JSON data.
///
/// Connectors must keep secrets (client secret, codes, tokens) out of `message` and `data`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ConnectorError {
    pub code: ErrorCode,
    pub message: String,
    pub data: Option<serde_json::Value>,
}

impl ConnectorError {
    /// An error without data.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches JSON data (e.g. the provider's `error_description`, or `retryAfterSecs`).
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `general` with a message.
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::General, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
