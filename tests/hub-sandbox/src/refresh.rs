//! `grant_type=refresh_token`: redeems a refresh token (single use) for new tokens.
//!
//! Refresh tokens rotate, as huggingface_hub expects: each success returns a new
//! `refresh_token` and the one sent stops working. The answer carries no `id_token`
//! (OIDC Core §12.2 makes it optional; the sandbox never sends one on refresh).

use crate::config::SandboxClient;
use crate::params::Params;
use crate::server::{Shared, lock};
use crate::token::{self, Credentials, Minted, OAuthError, TokenResponse};

/// huggingface_hub's wording for a dead refresh token (reference §3).
const EXPIRED_OR_REVOKED: &str = "refresh token is expired or revoked";

/// Rotates `refresh_token` for `client` (or, for a public client that sent no
/// `client_id`, the client the token was issued to, as codes identify theirs).
pub(crate) fn refresh_token(
    shared: &Shared,
    client: Option<&SandboxClient>,
    credentials: &Credentials,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("Missing refresh_token"))?;
    let mut store = lock(&shared.store);
    let client = match client {
        Some(client) => client,
        None => {
            let owner = store.refresh_token_client(presented).ok_or_else(dead)?;
            token::authenticate(shared, owner, credentials.secret.as_deref())?
        }
    };
    let grant = store
        .take_refresh_token(presented, &client.client_id)
        .ok_or_else(dead)?;
    let minted = Minted {
        client_id: grant.client_id,
        scope: grant.scope,
        user: grant.user,
    };
    Ok(token::mint(shared, &mut store, &minted))
}

/// Unknown, rotated away, expired, revoked or another client's: all look the same.
fn dead() -> OAuthError {
    OAuthError::invalid_grant(EXPIRED_OR_REVOKED)
}
