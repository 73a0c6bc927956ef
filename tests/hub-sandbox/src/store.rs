//! Issued authorization codes and access tokens.

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
}

/// A minted access token.
#[derive(Debug)]
pub(crate) struct TokenGrant {
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
