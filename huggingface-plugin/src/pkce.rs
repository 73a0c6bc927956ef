//! PKCE (RFC 7636) with S256, as Hugging Face's own clients use it.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// A fresh verifier: 32 random bytes, base64url (43 characters, the RFC's minimum length).
pub fn new_verifier() -> String {
    random_token::<32>()
}

/// `N` random bytes, base64url; also the OpenID Connect nonce.
pub fn random_token<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(SHA256(verifier))`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_long_and_distinct() {
        let (a, b) = (new_verifier(), new_verifier());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
