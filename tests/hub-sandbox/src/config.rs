//! Registered OAuth clients and the signed-in user.

use std::time::Duration;

/// Client id of [`SandboxClient::default`].
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client-id";
/// Client secret of [`SandboxClient::default`].
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-client-secret";
/// Placeholder replaced by the sandbox's endpoint in `picture` and `website` URLs.
pub const ENDPOINT_PLACEHOLDER: &str = "{endpoint}";

/// What a sandbox knows at start: its OAuth apps, its user and lifetimes.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Registered OAuth apps.
    pub clients: Vec<SandboxClient>,
    /// The user that `/oauth/authorize` auto-approves.
    pub user: SandboxUser,
    /// How long an authorization code stays redeemable (default 10 minutes).
    pub code_ttl: Duration,
    /// `expires_in` of access tokens, in seconds (default 28800 = 8 h, as Hugging Face).
    pub token_ttl_secs: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            clients: vec![SandboxClient::default()],
            user: SandboxUser::default(),
            code_ttl: Duration::from_secs(600),
            token_ttl_secs: 28_800,
        }
    }
}

/// A registered OAuth app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxClient {
    /// The app's client id.
    pub client_id: String,
    /// `None` makes a public client (PKCE, no secret).
    pub client_secret: Option<String>,
    /// Registered redirect URIs; empty accepts any absolute URI.
    pub redirect_uris: Vec<String>,
}

impl Default for SandboxClient {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.to_owned()),
            redirect_uris: Vec::new(),
        }
    }
}

impl SandboxClient {
    /// A public client (no secret) that accepts any redirect URI.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            redirect_uris: Vec::new(),
        }
    }
}

/// A Hugging Face user, as `/oauth/userinfo` reports it.
///
/// `picture` and `website` may contain [`ENDPOINT_PLACEHOLDER`], which the
/// sandbox replaces with its own endpoint (e.g. `{endpoint}/avatars/ada.svg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxUser {
    /// Stable id, 24 hex chars.
    pub sub: String,
    /// Display name (may contain spaces).
    pub name: String,
    /// Handle / URL slug.
    pub preferred_username: String,
    /// `None` for a user without a known email.
    pub email: Option<String>,
    /// Reported with `email` (Hugging Face always verifies emails).
    pub email_verified: bool,
    /// Avatar URL.
    pub picture: String,
    /// Personal website (may be empty).
    pub website: String,
    /// Serialized as `isPro`.
    pub is_pro: bool,
    /// Organizations, reported as `orgs` (`[]` when none).
    pub orgs: Vec<SandboxOrg>,
}

impl Default for SandboxUser {
    fn default() -> Self {
        Self {
            sub: "62f264b9f3c90f4b6514a269".to_owned(),
            name: "Ada Lovelace".to_owned(),
            preferred_username: "ada".to_owned(),
            email: Some("ada@example.com".to_owned()),
            email_verified: true,
            picture: format!("{ENDPOINT_PLACEHOLDER}/avatars/ada.svg"),
            website: "https://ada.example.com".to_owned(),
            is_pro: false,
            orgs: vec![SandboxOrg::default()],
        }
    }
}

/// An organization the user belongs to (an item of userinfo's `orgs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOrg {
    /// Org id, 24 hex chars (usable as `orgIds`).
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Handle / URL slug.
    pub preferred_username: String,
    /// Avatar URL; may contain [`ENDPOINT_PLACEHOLDER`].
    pub picture: String,
    /// Serialized as `roleInOrg` when present.
    pub role_in_org: Option<String>,
    /// `"team"`, `"enterprise"`, … when present.
    pub plan: Option<String>,
}

impl Default for SandboxOrg {
    fn default() -> Self {
        Self {
            sub: "64b7f1a2c3d4e5f60718293a".to_owned(),
            name: "Analytical Engines".to_owned(),
            preferred_username: "analytical-engines".to_owned(),
            picture: format!("{ENDPOINT_PLACEHOLDER}/avatars/analytical-engines.svg"),
            role_in_org: Some("admin".to_owned()),
            plan: Some("team".to_owned()),
        }
    }
}
