//! Property tests over every parser that reads provider or browser input: none may panic, and
//! each answers with its documented error code. (cargo-fuzz needs a nightly toolchain, which this
//! project's machines do not have; proptest runs on stable, inside `cargo test`.)
//! Failing cases are kept in `proptest-regressions/` and replayed first on every run; hand-made
//! hostile inputs live in `fuzz-corpus/` (named `<parser>-<what>`), each run through its parser.

use jsonwebtoken::jwk::JwkSet;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::http::{Reply, Step};
use crate::oidc::id_token::{self, Expected};
use crate::token::TokenResponse;
use crate::{callback, config::Config, orgs, userinfo};
use connector_api::ErrorCode;

/// Any JSON value, a few levels deep, with the keys the parsers look for among random ones.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("code".to_string()),
        Just("error".to_string()),
        Just("sub".to_string()),
        Just("email".to_string()),
        Just("email_verified".to_string()),
        Just("orgs".to_string()),
        Just("clientId".to_string()),
        Just("clientSecret".to_string()),
        Just("scope".to_string()),
        Just("endpoint".to_string()),
        Just("access_token".to_string()),
        Just("token_type".to_string()),
        ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn reply(step: Step, body: Vec<u8>) -> Reply {
    Reply::for_test(step, reqwest::StatusCode::OK, Default::default(), body)
}

fn keys() -> JwkSet {
    serde_json::from_value(json!({"keys": [{
        "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": "kuC66H-_Bg8HMrlYnlaa10DJGzkoFMT9DGPxMUhOcvmio8Dj-q07XA-ONPDpG6vhEfi4BEPZvOyMm237_X8Cjw3VPnpasEPQyD-lYMS1o4yXHsg90bg4QzwCS8fFvIxWcHZVmvYTU6AutcEUA235f6Ie7geZ55OaEbcnCODS4g5j_Tvbm6NmgGomUvE0OaODVlE4ThAwo_VnNADibUy2lXvTZ_4dh_SW0qknFwpm60MhDfjdtebPZLgXgsST9Ms6GVzpPIFxAKsAa9s2Y-TOcBe-BMpWkdyGrDdMj8YA2TAh7-YU-WxtvvH2YGN4kfEFTx-KXgqelXl0E_WQbLLtuQ", "e": "AQAB"
    }]}))
    .expect("a valid JWKS")
}

fn b64(v: Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// JWT-shaped text: three dot-separated parts, each random or base64url of random JSON.
fn jwt_like() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        json_value().prop_map(b64),
        (
            "(RS256|HS256|none|ES256|PS512|xyz)",
            proptest::option::of("(k1|k2|.{0,6})")
        )
            .prop_map(|(alg, kid)| { b64(json!({"alg": alg, "kid": kid, "typ": "JWT"})) }),
    ];
    (header, json_value(), "[A-Za-z0-9_-]{0,60}")
        .prop_map(|(h, claims, sig)| format!("{h}.{}.{sig}", b64(claims)))
}

/// A correctly signed id_token for [`keys`] (the sandbox's test key `k1`).
fn valid_token() -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
        "../../tests/hub-sandbox/keys/sandbox-key-1.pem"
    ))
    .expect("test key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "https://huggingface.co", "aud": "client", "sub": "u",
        "nonce": "n", "iat": now, "exp": now + 600});
    jsonwebtoken::encode(&header, &claims, &key).expect("signs")
}

const EXPECTED: Expected = Expected {
    issuer: "https://huggingface.co",
    audience: "client",
    nonce: "n",
};

#[test]
fn the_valid_token_verifies_so_the_properties_below_are_not_vacuous() {
    assert_eq!(
        id_token::verify(&valid_token(), &keys(), &EXPECTED),
        Ok("u".into())
    );
}

/// Runs `input` through the parser its corpus file name starts with.
fn run_corpus_case(name: &str, input: &[u8]) {
    let json = || serde_json::from_slice::<Value>(input).ok();
    let (parser, _) = name
        .split_once('-')
        .expect("corpus files are named <parser>-<what>");
    let code = match parser {
        "callback" => json()
            .and_then(|v| callback::code(&v).err())
            .map(|e| e.code),
        "config" => json().and_then(|v| Config::parse(v).err()).map(|e| e.code),
        "token" => reply(Step::Token, input.to_vec())
            .json::<TokenResponse>()
            .err()
            .map(|e| e.code),
        "userinfo" => match reply(Step::Userinfo, input.to_vec()).json::<Value>() {
            Ok(raw) => {
                let _ = orgs::check_allowed(&["acme".into()], &raw);
                userinfo::to_social_user(raw).err().map(|e| e.code)
            }
            Err(e) => Some(e.code),
        },
        "id_token" => {
            let token = String::from_utf8_lossy(input);
            assert!(
                id_token::verify(&token, &keys(), &EXPECTED).is_err(),
                "{name} verified"
            );
            None
        }
        other => panic!("no parser `{other}` for {name}"),
    };
    let expected = match parser {
        "callback" => ErrorCode::AuthorizationFailed,
        "config" => ErrorCode::InvalidConfig,
        _ => ErrorCode::InvalidResponse,
    };
    assert!(code.is_none_or(|c| c == expected), "{name}: {code:?}");
}

#[test]
fn the_committed_corpus_is_handled_without_panics() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("the corpus is committed") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        run_corpus_case(&name, &std::fs::read(&path).unwrap());
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} corpus files");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn callback_parameters(callback in json_value()) {
        if let Err(e) = callback::code(&callback) {
            prop_assert_eq!(e.code, ErrorCode::AuthorizationFailed);
        }
    }

    #[test]
    fn config_json(config in json_value()) {
        if let Err(e) = Config::parse(config) {
            prop_assert_eq!(e.code, ErrorCode::InvalidConfig);
            prop_assert!(e.data.is_some_and(|d| d["field"].is_string()));
        }
    }

    #[test]
    fn token_bodies(body in prop_oneof![json_value().prop_map(|v| v.to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..256)]) {
        if let Err(e) = reply(Step::Token, body).json::<TokenResponse>() {
            prop_assert_eq!(e.code, ErrorCode::InvalidResponse);
        }
    }

    #[test]
    fn userinfo_bodies(body in prop_oneof![json_value().prop_map(|v| v.to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..256)]) {
        let parsed = reply(Step::Userinfo, body).json::<Value>();
        match parsed {
            Ok(raw) => {
                let _ = orgs::check_allowed(&["acme".into()], &raw);
                if let Err(e) = userinfo::to_social_user(raw) {
                    prop_assert_eq!(e.code, ErrorCode::InvalidResponse);
                }
            }
            Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidResponse),
        }
    }

    /// Without the provider's private key no id_token can verify, whatever its shape.
    #[test]
    fn id_tokens(token in prop_oneof![jwt_like(), ".{0,80}"]) {
        prop_assert!(id_token::verify(&token, &keys(), &EXPECTED).is_err());
    }

    /// One changed character anywhere in a valid token (but the last of a part, whose spare
    /// base64 bits may not matter) and it no longer verifies.
    #[test]
    fn tampered_id_tokens(at in any::<prop::sample::Index>(), with in "[A-Za-z0-9_-]") {
        let token = valid_token();
        let positions: Vec<usize> = token
            .char_indices()
            .filter(|(i, c)| *c != '.' && !matches!(token.as_bytes().get(i + 1), Some(b'.') | None))
            .map(|(i, _)| i)
            .collect();
        let i = positions[at.index(positions.len())];
        prop_assume!(token[i..=i] != *with);
        let tampered = format!("{}{with}{}", &token[..i], &token[i + 1..]);
        prop_assert!(id_token::verify(&tampered, &keys(), &EXPECTED).is_err());
    }
}
