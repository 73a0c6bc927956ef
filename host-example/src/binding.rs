//! Binding a sign-in to the browser that started it, with a cookie.
//!
//! The cookie carries a random value; the pending sign-in stores only its SHA-256. A callback
//! is accepted only from a browser presenting the value whose hash was stored, which stops a
//! sign-in link from being completed in another browser (login CSRF). One value serves every
//! sign-in a browser starts, so two tabs can sign in at once.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The cookie's name. Not `__Host-` prefixed: that prefix needs `Secure`, and the demo runs on
/// plain http on loopback.
pub const COOKIE_NAME: &str = "hx_signin";

/// 256 random bits, base64url: used for states, cookie values and `jti`s.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// SHA-256, hex. Stored instead of the secret itself; comparing two hashes with `==` leaks
/// nothing useful through timing, since an attacker cannot choose inputs with a given hash prefix.
pub fn hash(value: &str) -> String {
    format!("{:x}", Sha256::digest(value.as_bytes()))
}

/// The store key of a state: its hash, so that a dump of the store holds no live state.
pub fn state_key(state: &str) -> String {
    hash(state)
}

/// The binding value the browser sent, if any (and if well-formed).
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|value| {
            (16..=128).contains(&value.len())
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The `Set-Cookie` value: HttpOnly, SameSite=Lax (sent on the provider's top-level redirect
/// back, not on cross-site subrequests), `Secure` for an https broker, living as long as a
/// sign-in may take.
pub fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn reads_the_cookie_among_others_and_refuses_junk() {
        let mut headers = HeaderMap::new();
        let value = random_token();
        let cookie = format!("a=1; {COOKIE_NAME}={value}; b=2");
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(from_headers(&headers), Some(value));
        headers.insert(header::COOKIE, HeaderValue::from_static("hx_signin=<x>"));
        assert_eq!(from_headers(&headers), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("v", 600, true);
        assert_eq!(
            c,
            "hx_signin=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!set_cookie("v", 600, false).contains("Secure"));
    }
}
