//! RS256 `id_token`s for the `openid` scope, and the forgeries a client must refuse.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde::Serialize;

use crate::config::SandboxUser;
use crate::jwks::SigningKeys;
use crate::server::{Shared, lock};

/// id_token lifetime (`exp - iat`), as in Hugging Face's mocks (reference §3).
const LIFETIME_SECS: u64 = 3600;
/// `iss` of [`IdTokenForgery::WrongIssuer`].
pub const FORGED_ISSUER: &str = "https://attacker.example";
/// `aud` of [`IdTokenForgery::WrongAudience`].
pub const FORGED_AUDIENCE: &str = "another-client-id";
/// `nonce` of [`IdTokenForgery::WrongNonce`].
pub const FORGED_NONCE: &str = "forged-nonce";
/// `kid` of [`IdTokenForgery::UnknownKid`].
pub const UNKNOWN_KID: &str = "nobody";
/// The whole id_token of [`IdTokenForgery::Garbage`].
pub const GARBAGE_ID_TOKEN: &str = "not.a.jwt";

/// A bad id_token that the sandbox issues instead of a valid one (see
/// [`crate::HubSandbox::set_id_token_forgery`]); each one a verifying client must refuse.
/// Everything not named stays as in a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdTokenForgery {
    /// Header `alg: "none"` (with the active `kid`) and an empty signature: `header.claims.`.
    AlgNone,
    /// `alg: "HS256"`, HMAC-signed with the active key's public SPKI PEM as the secret
    /// (the RS/HS key-confusion attack), header `kid` of the active key.
    Hs256,
    /// RS256 signed by a key never published (`keys/attacker.pem`), header `kid` of the active key.
    WrongKey,
    /// Valid RS256 signature by the active key but no `kid` header (the JWKS has several keys).
    MissingKid,
    /// Valid RS256 signature by the active key, `kid` [`UNKNOWN_KID`].
    UnknownKid,
    /// `exp` 2 h in the past, `iat` 3 h in the past.
    Expired,
    /// `iat` 10 minutes ahead (`exp` = `iat` + 1 h).
    IssuedInFuture,
    /// `iss` [`FORGED_ISSUER`].
    WrongIssuer,
    /// `aud` [`FORGED_AUDIENCE`].
    WrongAudience,
    /// `nonce` [`FORGED_NONCE`] (present even when the authorize request had none).
    WrongNonce,
    /// `sub` differs from the userinfo `sub`.
    WrongSub,
    /// Not a JWT at all: [`GARBAGE_ID_TOKEN`].
    Garbage,
}

impl IdTokenForgery {
    /// Every forgery, for tests that try them all.
    pub const ALL: &'static [IdTokenForgery] = &[
        IdTokenForgery::AlgNone,
        IdTokenForgery::Hs256,
        IdTokenForgery::WrongKey,
        IdTokenForgery::MissingKid,
        IdTokenForgery::UnknownKid,
        IdTokenForgery::Expired,
        IdTokenForgery::IssuedInFuture,
        IdTokenForgery::WrongIssuer,
        IdTokenForgery::WrongAudience,
        IdTokenForgery::WrongNonce,
        IdTokenForgery::WrongSub,
        IdTokenForgery::Garbage,
    ];
}

/// Who and what an id_token is about.
#[derive(Debug)]
pub(crate) struct Subject<'a> {
    pub client_id: &'a str,
    pub user: &'a SandboxUser,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: u64,
}

/// Signing or serialization failed (never with the committed keys).
pub(crate) type SignError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(flatten)]
    profile: Option<ProfileClaims>,
    #[serde(flatten)]
    email: Option<EmailClaims>,
}

/// Claims granted by the `profile` scope.
#[derive(Debug, Serialize)]
struct ProfileClaims {
    name: String,
    preferred_username: String,
    picture: String,
    profile: String,
    website: String,
}

/// Claims granted by the `email` scope (for a user with an email).
#[derive(Debug, Serialize)]
struct EmailClaims {
    email: String,
    email_verified: bool,
}

/// The id_token for `subject`: valid, or forged as currently armed.
pub(crate) fn issue(shared: &Shared, subject: &Subject<'_>) -> Result<String, SignError> {
    let forgery = *lock(&shared.id_token_forgery);
    let mut claims = claims(shared, subject, get_current_timestamp());
    if let Some(forgery) = forgery {
        tamper(forgery, &mut claims);
    }
    sign(&lock(&shared.keys), forgery, &claims)
}

fn claims(shared: &Shared, subject: &Subject<'_>, now: u64) -> Claims {
    let granted = |wanted: &str| subject.scope.split(' ').any(|s| s == wanted);
    let user = subject.user;
    let email = user.email.as_ref().filter(|_| granted("email"));
    Claims {
        iss: shared.endpoint.clone(),
        sub: user.sub.clone(),
        aud: subject.client_id.to_owned(),
        iat: now,
        exp: now + LIFETIME_SECS,
        auth_time: subject.auth_time,
        nonce: subject.nonce.map(str::to_owned),
        profile: granted("profile").then(|| ProfileClaims {
            name: user.name.clone(),
            preferred_username: user.preferred_username.clone(),
            picture: shared.expand(&user.picture),
            profile: format!("{}/{}", shared.endpoint, user.preferred_username),
            website: shared.expand(&user.website),
        }),
        email: email.map(|email| EmailClaims {
            email: email.clone(),
            email_verified: user.email_verified,
        }),
    }
}

/// Applies the claim-level part of `forgery` (header/signature forgeries change nothing here).
fn tamper(forgery: IdTokenForgery, claims: &mut Claims) {
    const HOUR: u64 = 3600;
    match forgery {
        IdTokenForgery::Expired => {
            claims.iat = claims.iat.saturating_sub(3 * HOUR);
            claims.exp = claims.iat + HOUR;
            claims.auth_time = claims.auth_time.min(claims.iat);
        }
        IdTokenForgery::IssuedInFuture => {
            claims.iat += 600;
            claims.exp = claims.iat + LIFETIME_SECS;
        }
        IdTokenForgery::WrongIssuer => claims.iss = FORGED_ISSUER.to_owned(),
        IdTokenForgery::WrongAudience => claims.aud = FORGED_AUDIENCE.to_owned(),
        IdTokenForgery::WrongNonce => claims.nonce = Some(FORGED_NONCE.to_owned()),
        IdTokenForgery::WrongSub => claims.sub = other_sub(&claims.sub),
        _ => {}
    }
}

/// A 24-hex id that is not `sub`.
fn other_sub(sub: &str) -> String {
    let candidate = "0123456789abcdef01234567";
    if sub == candidate {
        "fedcba9876543210fedcba98".to_owned()
    } else {
        candidate.to_owned()
    }
}

/// Serializes and signs `claims` as `forgery` says (with the active key when valid).
fn sign(
    keys: &SigningKeys,
    forgery: Option<IdTokenForgery>,
    claims: &Claims,
) -> Result<String, SignError> {
    let active = keys.active();
    let header = |alg, kid: Option<&str>| Header {
        kid: kid.map(str::to_owned),
        ..Header::new(alg)
    };
    let rs256 = header(Algorithm::RS256, Some(active.kid));
    let token = match forgery {
        Some(IdTokenForgery::AlgNone) => unsigned(active.kid, claims)?,
        Some(IdTokenForgery::Garbage) => GARBAGE_ID_TOKEN.to_owned(),
        Some(IdTokenForgery::Hs256) => {
            let secret = EncodingKey::from_secret(active.public_pem.as_bytes());
            encode(&header(Algorithm::HS256, Some(active.kid)), claims, &secret)?
        }
        Some(IdTokenForgery::WrongKey) => encode(&rs256, claims, &keys.attacker)?,
        Some(IdTokenForgery::MissingKid) => {
            encode(&header(Algorithm::RS256, None), claims, &active.encoding)?
        }
        Some(IdTokenForgery::UnknownKid) => {
            let unknown = header(Algorithm::RS256, Some(UNKNOWN_KID));
            encode(&unknown, claims, &active.encoding)?
        }
        _ => encode(&rs256, claims, &active.encoding)?,
    };
    Ok(token)
}

/// An unsecured JWS (RFC 7519 §6): `alg: "none"` and an empty signature part.
fn unsigned(kid: &str, claims: &Claims) -> Result<String, SignError> {
    // jsonwebtoken's `Algorithm` has no `none`, so the header is written by hand.
    let header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": kid });
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    Ok(format!("{header}.{claims}."))
}
