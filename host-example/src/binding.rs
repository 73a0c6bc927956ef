//! Binding a sign-in to the browser that started it, with a cookie.
//!
//! The cookie carries a value the broker issued: 32 random bytes and a MAC of them under the
//! broker's [`BindingKey`]. The pending sign-in stores only the value's SHA-256. A callback is
//! accepted only from a browser presenting the value whose hash was stored, which stops a
//! sign-in link from being completed in another browser (login CSRF). One value serves every
//! sign-in a browser starts, so two tabs can sign in at once.
//!
//! Cookie tossing: whoever can set a cookie for the broker's host (a service on another port, a
//! sibling subdomain, a plain-http network position) could plant a value of their choosing, or
//! their own binding with a narrower path. So a value is reused only when its MAC verifies (a
//! chosen value is never adopted), a callback presenting two binding cookies is refused
//! ([`Presented::Conflict`]), and an https broker names its cookie `__Host-…`, which browsers
//! accept only from a secure origin, for the whole host and path `/`.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The cookie's name on a plain-http broker (the `__Host-` prefix needs `Secure`, and the demo
/// runs on plain http on loopback).
pub const COOKIE_NAME: &str = "hx_signin";

/// The cookie's name on an https broker.
pub const SECURE_COOKIE_NAME: &str = "__Host-hx_signin";

/// Bytes of randomness in a binding value.
const NONCE_LEN: usize = 32;
/// Bytes of MAC kept (128 bits: forging one is a 2^-128 guess).
const MAC_LEN: usize = 16;

/// The cookie name a broker uses.
pub fn cookie_name(https: bool) -> &'static str {
    match https {
        true => SECURE_COOKIE_NAME,
        false => COOKIE_NAME,
    }
}

/// The key binding values are authenticated with. Every instance sharing pending sign-ins must
/// hold the same key (the Redis store keeps it there); `Debug` does not show it.
#[derive(Clone)]
pub struct BindingKey([u8; 32]);

impl BindingKey {
    /// A fresh random key (one broker process with an in-memory store).
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A key from its bytes (as kept in a shared store).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A new binding value: random bytes and their MAC, base64url (64 characters).
    pub fn issue(&self) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut value = nonce.to_vec();
        value.extend_from_slice(&self.mac(&nonce).finalize().into_bytes()[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(value)
    }

    /// Whether `value` was issued under this key (compared in constant time).
    pub fn verify(&self, value: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(value) else {
            return false;
        };
        if bytes.len() != NONCE_LEN + MAC_LEN {
            return false;
        }
        let (nonce, tag) = bytes.split_at(NONCE_LEN);
        self.mac(nonce).verify_truncated_left(tag).is_ok()
    }

    fn mac(&self, nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"hx_signin binding v1\0");
        mac.update(nonce);
        mac
    }
}

impl std::fmt::Debug for BindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindingKey(<redacted>)")
    }
}

/// 256 random bits, base64url: used for states and `jti`s.
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

/// The binding cookies a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// None, or one under the other name (a plain `hx_signin` sent to an https broker).
    Nothing,
    /// Exactly one, under this broker's name; not yet verified.
    One(String),
    /// More than one (under either name, in any of the `Cookie` headers): someone planted a
    /// cookie beside the browser's own.
    Conflict(usize),
}

/// Counts every `hx_signin` and `__Host-hx_signin` pair of every `Cookie` header; `name` is the
/// one this broker uses.
pub fn presented(headers: &HeaderMap, name: &str) -> Presented {
    let found: Vec<(&str, &str)> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(n, v)| (n.trim(), v.trim().trim_matches('"')))
        .filter(|(n, _)| *n == COOKIE_NAME || *n == SECURE_COOKIE_NAME)
        .collect();
    match found.as_slice() {
        [] => Presented::Nothing,
        [(n, value)] if *n == name => Presented::One((*value).to_string()),
        [_] => Presented::Nothing,
        many => Presented::Conflict(many.len()),
    }
}

/// The browser's binding value if it presents exactly one that this broker issued.
pub fn verified(headers: &HeaderMap, name: &str, key: &BindingKey) -> Option<String> {
    match presented(headers, name) {
        Presented::One(value) if key.verify(&value) => Some(value),
        _ => None,
    }
}

/// The `Set-Cookie` value: HttpOnly, SameSite=Lax (sent on the provider's top-level redirect
/// back, not on cross-site subrequests), `Path=/` and no `Domain`, living as long as a sign-in
/// may take; on an https broker `Secure` and the `__Host-` name.
pub fn set_cookie(value: &str, max_age_secs: u64, https: bool) -> String {
    let name = cookie_name(https);
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cookies(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::COOKIE, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn only_values_issued_under_the_key_verify() {
        let key = BindingKey::random();
        let value = key.issue();
        assert_eq!(value.len(), 64);
        assert!(key.verify(&value));
        assert!(!BindingKey::random().verify(&value), "another key");
        let mut forged = value.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        assert!(!key.verify(std::str::from_utf8(&forged).unwrap()));
        for junk in ["", "x", &"A".repeat(43), &"A".repeat(64), "<x>"] {
            assert!(!key.verify(junk), "{junk}");
        }
        assert_eq!(format!("{key:?}"), "BindingKey(<redacted>)");
    }

    #[test]
    fn counts_binding_cookies_across_headers_and_names() {
        let name = COOKIE_NAME;
        assert_eq!(presented(&cookies(&["a=1"]), name), Presented::Nothing);
        assert_eq!(
            presented(&cookies(&["a=1; hx_signin=v; b=2"]), name),
            Presented::One("v".into())
        );
        assert_eq!(
            presented(&cookies(&["hx_signin=v"]), SECURE_COOKIE_NAME),
            Presented::Nothing,
            "a plain cookie is not an https broker's binding"
        );
        assert_eq!(
            presented(&cookies(&["hx_signin=a; hx_signin=b"]), name),
            Presented::Conflict(2)
        );
        assert_eq!(
            presented(&cookies(&["hx_signin=a", "x=1; __Host-hx_signin=b"]), name),
            Presented::Conflict(2)
        );
    }

    #[test]
    fn a_value_is_reused_only_when_it_verifies() {
        let key = BindingKey::random();
        let value = key.issue();
        let good = cookies(&[&format!("hx_signin={value}")]);
        assert_eq!(verified(&good, COOKIE_NAME, &key), Some(value));
        let chosen = cookies(&[&format!("hx_signin={}", "A".repeat(64))]);
        assert_eq!(verified(&chosen, COOKIE_NAME, &key), None);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set_cookie("v", 600, true),
            "__Host-hx_signin=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set_cookie("v", 600, false),
            "hx_signin=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"
        );
    }
}
