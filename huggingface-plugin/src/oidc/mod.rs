//! OpenID Connect: the id_token of a sign-in whose scope has `openid`, verified against the
//! provider's published keys.

mod discovery;
pub(crate) mod id_token;
mod jwks;

use connector_api::{ConnectorError, ErrorCode};

use crate::config::Config;
use crate::scrub::Scrubber;
use crate::secret::Secret;

pub use id_token::IdTokenError;

/// Per-instance OpenID Connect state: the provider's keys, fetched on first use.
#[derive(Debug, Default)]
pub struct Oidc {
    keys: jwks::KeyCache,
}

impl Oidc {
    /// Verifies `id_token` (signature, `iss`, `aud`, `exp`, `iat`, `nonce`) and returns its `sub`.
    /// A key id the cached JWKS does not know, or a signature its key for that id does not
    /// verify (the provider replaced the key but kept the id), makes it fetch the JWKS again,
    /// once, unless a refetch happened within [`crate::constants::JWKS_REFETCH_INTERVAL`].
    /// `held` is what the sign-in holds, kept out of quoted provider text.
    pub async fn verify(
        &self,
        config: &Config,
        id_token: Option<&Secret>,
        nonce: &str,
        held: &Scrubber,
    ) -> Result<String, ConnectorError> {
        let token = id_token.ok_or(IdTokenError::Missing).map_err(invalid)?;
        let expected = id_token::Expected {
            issuer: &config.endpoint,
            audience: &config.client_id,
            nonce,
        };
        let keys = self.keys.get(config, held).await?;
        match id_token::verify(token.expose(), &keys, &expected) {
            Err(e @ (IdTokenError::UnknownKid(_) | IdTokenError::BadSignature)) => {
                match self.keys.refetch(config, &keys, held).await? {
                    Some(fresh) => id_token::verify(token.expose(), &fresh, &expected),
                    None => Err(e),
                }
                .map_err(invalid)
            }
            other => other.map_err(invalid),
        }
    }
}

/// `social_invalid_id_token` with what failed.
pub fn invalid(e: IdTokenError) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::SocialIdTokenInvalid,
        format!("id_token refused: {e}"),
    )
}
