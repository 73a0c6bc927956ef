//! The sandbox's RSA signing keys and `GET /oauth/jwks`, which publishes them.
//!
//! Three committed test keys (see `keys/README.md`): at start `sandbox-key-1` signs and
//! `sandbox-key-2` is published but idle (so the JWKS always has several keys, and a
//! token without `kid` is ambiguous). [`SigningKeys::rotate`] moves signing to
//! `sandbox-key-3`, published from then on, so a client's cached JWKS misses its `kid`.
//! [`SigningKeys::replace_keeping_kid`] puts `sandbox-key-4` in the signing key's place under
//! the same `kid`, so a client's cached key for that `kid` no longer verifies.

use std::io;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::server::{AppState, lock};

/// `kid` of the key that signs until the first rotation.
pub const INITIAL_KEY_ID: &str = "sandbox-key-1";
/// `kid` of the published key that never signs.
pub const IDLE_KEY_ID: &str = "sandbox-key-2";
/// `kid` of the key that signs after [`crate::HubSandbox::rotate_signing_key`].
pub const ROTATED_KEY_ID: &str = "sandbox-key-3";

/// (kid, private PKCS#8 PEM, public SPKI PEM) of the committed keys, in publication order.
const KEY_FILES: [(&str, &str, &str); 3] = [
    (
        INITIAL_KEY_ID,
        include_str!("../keys/sandbox-key-1.pem"),
        include_str!("../keys/sandbox-key-1.pub.pem"),
    ),
    (
        IDLE_KEY_ID,
        include_str!("../keys/sandbox-key-2.pem"),
        include_str!("../keys/sandbox-key-2.pub.pem"),
    ),
    (
        ROTATED_KEY_ID,
        include_str!("../keys/sandbox-key-3.pem"),
        include_str!("../keys/sandbox-key-3.pub.pem"),
    ),
];

/// Replaces the signing key under its `kid` (see [`SigningKeys::replace_keeping_kid`]).
const REPLACEMENT_PEMS: (&str, &str) = (
    include_str!("../keys/sandbox-key-4.pem"),
    include_str!("../keys/sandbox-key-4.pub.pem"),
);

/// Never published: signs the `WrongKey` forgery.
const ATTACKER_PEM: &str = include_str!("../keys/attacker.pem");

/// One RSA key pair, ready to sign and to be published.
#[derive(Clone)]
pub(crate) struct RsaKey {
    pub kid: &'static str,
    pub encoding: EncodingKey,
    /// SPKI PEM of the public key (the secret of the HS256 confusion forgery).
    pub public_pem: &'static str,
    jwk: Jwk,
}

impl std::fmt::Debug for RsaKey {
    // `EncodingKey` is private material: show the kid only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey").field("kid", &self.kid).finish()
    }
}

impl RsaKey {
    fn load(kid: &'static str, private_pem: &str, public_pem: &'static str) -> io::Result<Self> {
        let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(invalid_key)?;
        let jwk = public_jwk(kid, &encoding)?;
        Ok(Self {
            kid,
            encoding,
            public_pem,
            jwk,
        })
    }
}

/// The public JWK of `key`: `kty`, `n`, `e` from jsonwebtoken, then `kid`, `use`, `alg`.
fn public_jwk(kid: &str, key: &EncodingKey) -> io::Result<Jwk> {
    // `from_encoding_key` derives only the public components (n, e) for RSA keys.
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::RS256).map_err(invalid_key)?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    Ok(jwk)
}

fn invalid_key(error: jsonwebtoken::errors::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sandbox key: {error}"))
}

/// The published keys, which one signs, and the attacker's key.
pub(crate) struct SigningKeys {
    keys: Vec<RsaKey>,
    /// `sandbox-key-4`, loaded under a placeholder kid until it replaces a key.
    replacement: RsaKey,
    /// How many of `keys` (a prefix) the JWKS publishes.
    published: usize,
    active: usize,
    pub attacker: EncodingKey,
}

impl std::fmt::Debug for SigningKeys {
    // `EncodingKey` has no `Debug` (private material): show kids and state only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("keys", &self.keys)
            .field("published", &self.published)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Parses the committed keys (fails only if a key file is broken).
    pub(crate) fn load() -> io::Result<Self> {
        let keys = KEY_FILES
            .iter()
            .map(|(kid, private, public)| RsaKey::load(kid, private, public))
            .collect::<io::Result<Vec<_>>>()?;
        let attacker = EncodingKey::from_rsa_pem(ATTACKER_PEM.as_bytes()).map_err(invalid_key)?;
        let (private, public) = REPLACEMENT_PEMS;
        Ok(Self {
            keys,
            replacement: RsaKey::load("sandbox-key-4", private, public)?,
            published: 2,
            active: 0,
            attacker,
        })
    }

    /// The key that signs id_tokens now.
    pub(crate) fn active(&self) -> &RsaKey {
        &self.keys[self.active]
    }

    /// Signs with `sandbox-key-3` from now on and publishes it (idempotent). The older keys
    /// stay published, as a provider keeps them while tokens they signed are still alive.
    pub(crate) fn rotate(&mut self) {
        self.active = self.keys.len() - 1;
        self.published = self.keys.len();
    }

    /// Signs with `sandbox-key-4` from now on, published under the signing key's `kid` in
    /// that key's place: same kids, other key material. Calling it again changes nothing.
    pub(crate) fn replace_keeping_kid(&mut self) {
        let kid = self.keys[self.active].kid;
        if self.keys[self.active].public_pem == self.replacement.public_pem {
            return;
        }
        let mut key = self.replacement.clone();
        key.kid = kid;
        key.jwk.common.key_id = Some(kid.to_owned());
        self.keys[self.active] = key;
    }

    /// The JWKS document.
    pub(crate) fn jwk_set(&self) -> JwkSet {
        let keys = self.keys[..self.published]
            .iter()
            .map(|key| key.jwk.clone())
            .collect();
        JwkSet { keys }
    }
}

pub(crate) async fn jwks(State(shared): AppState) -> Response {
    Json(lock(&shared.keys).jwk_set()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::AlgorithmParameters;

    #[test]
    fn committed_keys_load_and_publish_rsa_components() {
        let mut keys = SigningKeys::load().expect("keys load");
        let kids = |keys: &SigningKeys| -> Vec<Option<String>> {
            let set = keys.jwk_set();
            set.keys.into_iter().map(|k| k.common.key_id).collect()
        };
        assert_eq!(
            kids(&keys),
            [Some(INITIAL_KEY_ID.into()), Some(IDLE_KEY_ID.into())]
        );
        assert_eq!(keys.active().kid, INITIAL_KEY_ID);
        for jwk in keys.jwk_set().keys {
            let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
                panic!("not an RSA JWK: {jwk:?}");
            };
            // 2048-bit modulus: 256 bytes = 342 base64url chars; e = 65537 = "AQAB".
            assert_eq!(rsa.n.len(), 342);
            assert_eq!(rsa.e, "AQAB");
        }
        keys.rotate();
        keys.rotate();
        assert_eq!(keys.active().kid, ROTATED_KEY_ID);
        assert_eq!(kids(&keys).len(), 3);
    }

    #[test]
    fn replacing_keeps_the_kids_and_changes_the_signing_key() {
        let mut keys = SigningKeys::load().expect("keys load");
        let before = keys.jwk_set();
        keys.replace_keeping_kid();
        keys.replace_keeping_kid();
        let after = keys.jwk_set();
        assert_eq!(keys.active().kid, INITIAL_KEY_ID);
        let kids = |set: &JwkSet| -> Vec<Option<String>> {
            set.keys.iter().map(|k| k.common.key_id.clone()).collect()
        };
        assert_eq!(kids(&before), kids(&after));
        assert_ne!(
            before.keys[0], after.keys[0],
            "new material for the same kid"
        );
        assert_eq!(before.keys[1], after.keys[1], "the idle key stays");
    }
}
