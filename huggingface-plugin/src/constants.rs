//! Hugging Face's fixed values (see `shared/reference/huggingface-oauth.md`).

use std::time::Duration;

/// The public Hub; `HF_ENDPOINT` or the config's `endpoint` replace it (mirrors, sandboxes).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The environment variable Hugging Face's own clients read for another Hub URL.
pub const ENDPOINT_ENV: &str = "HF_ENDPOINT";

pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const USERINFO_PATH: &str = "/oauth/userinfo";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// At most one JWKS refetch per connector instance in this time, when an id_token names a key
/// the cached set lacks or its signature fails with the cached key (a key replaced under the
/// same `kid`): tokens that fail on purpose cannot make it hammer the provider.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Clock skew tolerated on an id_token's `exp` and `iat`.
pub const ID_TOKEN_LEEWAY_SECS: u64 = 60;

/// Logto's default: without `profile` the user has no name or avatar.
pub const DEFAULT_SCOPE: &str = "profile";
/// Logto's connector waits 5 s for userinfo; we apply it to every request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A larger token, userinfo, discovery or JWKS body is not a Hugging Face answer; refuse it unread.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of an unexpected error body goes into an error message.
pub const MAX_ERROR_TEXT: usize = 300;
