//! Verification of one id_token against a key set, with jsonwebtoken (no hand-written crypto).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::constants::ID_TOKEN_LEEWAY_SECS;

/// Why an id_token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response has no id_token although `openid` was requested")]
    Missing,
    #[error("not a readable JWT, or its alg is none or unknown")]
    Malformed,
    #[error("alg {0:?} is not an asymmetric signature algorithm")]
    UnsupportedAlg(Algorithm),
    #[error("no kid, and the provider publishes several keys")]
    NoKid,
    #[error("kid `{0}` is not in the provider's key set")]
    UnknownKid(String),
    #[error("the provider's key for it cannot be used: {0}")]
    BadKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("iss is not the endpoint")]
    WrongIssuer,
    #[error("aud does not contain the client id")]
    WrongAudience,
    #[error("nonce does not match this sign-in")]
    WrongNonce,
    #[error("sub does not match the userinfo sub")]
    WrongSub,
    #[error("claims are missing or malformed: {0}")]
    BadClaims(String),
}

/// What this sign-in expects of its id_token.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub nonce: &'a str,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    nonce: Option<String>,
}

/// Asymmetric algorithms only: an HMAC id_token would be "signed" with a secret the client knows.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Verifies `token` and returns its `sub`.
pub fn verify(token: &str, keys: &JwkSet, expected: &Expected) -> Result<String, IdTokenError> {
    let header = decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !ALLOWED.contains(&header.alg) {
        return Err(IdTokenError::UnsupportedAlg(header.alg));
    }
    let jwk = match (&header.kid, keys.keys.as_slice()) {
        (Some(kid), _) => keys
            .find(kid)
            .ok_or_else(|| IdTokenError::UnknownKid(kid.clone()))?,
        (None, [only]) => only,
        (None, _) => return Err(IdTokenError::NoKid),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::BadKey(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = ID_TOKEN_LEEWAY_SECS;
    let claims = decode::<Claims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => IdTokenError::BadSignature,
            ErrorKind::ExpiredSignature => IdTokenError::Expired,
            ErrorKind::InvalidIssuer => IdTokenError::WrongIssuer,
            ErrorKind::InvalidAudience => IdTokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm => {
                IdTokenError::BadKey("its alg differs from the token's".into())
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                IdTokenError::BadClaims(format!("no `{claim}`"))
            }
            // Not the parser's message: it may quote a claim's value.
            _ => IdTokenError::BadClaims("unreadable".into()),
        })?
        .claims;
    if claims.iat > now() + ID_TOKEN_LEEWAY_SECS {
        return Err(IdTokenError::IssuedInFuture);
    }
    match claims.nonce.as_deref() == Some(expected.nonce) {
        true => Ok(claims.sub),
        false => Err(IdTokenError::WrongNonce),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
