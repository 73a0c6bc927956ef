//! Issued authorization codes, access tokens and refresh tokens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::config::SandboxUser;

/// What an authorization code was issued for (see [`crate::HubSandbox::issue_code`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeParams {
    /// The client the code is bound to.
    pub client_id: String,
    /// Must be sent again, identical, to `/oauth/token`.
    pub redirect_uri: String,
    /// Space-separated granted scope.
    pub scope: String,
    /// PKCE S256 challenge; when set, `/oauth/token` requires the matching `code_verifier`.
    pub code_challenge: Option<String>,
    /// OIDC nonce from the authorize request.
    pub nonce: Option<String>,
}

/// A minted authorization code.
#[derive(Debug)]
pub(crate) struct CodeGrant {
    pub params: CodeParams,
    pub user: SandboxUser,
    pub expires_at: Instant,
    pub used: bool,
    /// When the user authorized, in Unix seconds (the id_token's `auth_time`).
    pub auth_time: u64,
}

/// A minted access token.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    pub scope: String,
    pub user: SandboxUser,
    pub expires_at: Instant,
    pub revoked: bool,
}

/// A minted refresh token; redeeming it removes it (rotation).
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub scope: String,
    pub user: SandboxUser,
    pub expires_at: Instant,
    pub revoked: bool,
}

/// Codes and tokens, keyed by their opaque value.
#[derive(Debug, Default)]
pub(crate) struct Store {
    codes: HashMap<String, CodeGrant>,
    tokens: HashMap<String, TokenGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
}

impl Store {
    pub(crate) fn issue_code(
        &mut self,
        params: CodeParams,
        user: SandboxUser,
        ttl: Duration,
    ) -> String {
        let code = random_code();
        let grant = CodeGrant {
            params,
            user,
            expires_at: Instant::now() + ttl,
            used: false,
            auth_time: jsonwebtoken::get_current_timestamp(),
        };
        self.codes.insert(code.clone(), grant);
        code
    }

    pub(crate) fn code_mut(&mut self, code: &str) -> Option<&mut CodeGrant> {
        self.codes.get_mut(code)
    }

    pub(crate) fn issue_token(&mut self, grant: TokenGrant) -> String {
        let token = format!("hf_oauth_{}", random_alphanumeric(40));
        self.tokens.insert(token.clone(), grant);
        token
    }

    /// The grant behind `token` if it is known, unexpired and not revoked.
    pub(crate) fn valid_token(&self, token: &str) -> Option<&TokenGrant> {
        let grant = self.tokens.get(token)?;
        (!grant.revoked && Instant::now() < grant.expires_at).then_some(grant)
    }

    /// Stores `grant` under a new refresh token (256 random bits).
    pub(crate) fn issue_refresh_token(&mut self, grant: RefreshGrant) -> String {
        let token = format!("hf_oauth_refresh_{}", random_code());
        self.refresh_tokens.insert(token.clone(), grant);
        token
    }

    /// Removes `token` and returns its grant, if it is known, unexpired, not revoked and
    /// `client_id`'s; otherwise leaves it untouched (a wrong client does not burn it).
    pub(crate) fn take_refresh_token(
        &mut self,
        token: &str,
        client_id: &str,
    ) -> Option<RefreshGrant> {
        let grant = self.refresh_tokens.get(token)?;
        let usable =
            !grant.revoked && Instant::now() < grant.expires_at && grant.client_id == client_id;
        usable.then(|| self.refresh_tokens.remove(token))?
    }

    /// The client a refresh token was issued to, if known (identifies public clients).
    pub(crate) fn refresh_token_client(&self, token: &str) -> Option<&str> {
        let grant = self.refresh_tokens.get(token)?;
        Some(grant.client_id.as_str())
    }

    pub(crate) fn revoke_all_refresh_tokens(&mut self) {
        self.refresh_tokens
            .values_mut()
            .for_each(|t| t.revoked = true);
    }

    pub(crate) fn expire_all_refresh_tokens(&mut self) {
        let now = Instant::now();
        self.refresh_tokens
            .values_mut()
            .for_each(|t| t.expires_at = now);
    }

    pub(crate) fn expire_all_codes(&mut self) {
        let now = Instant::now();
        self.codes.values_mut().for_each(|c| c.expires_at = now);
    }

    pub(crate) fn revoke_all_tokens(&mut self) {
        self.tokens.values_mut().for_each(|t| t.revoked = true);
    }
}

impl CodeGrant {
    pub(crate) fn is_expired(&self) -> bool {
        Instant::now() >= self.expires_at
    }
}

/// 256 random bits, base64url without padding (43 chars).
fn random_code() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
