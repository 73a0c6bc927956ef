//! The broker's config file (TOML): the public URL and the connector instances.
//!
//! ```toml
//! public_url = "http://127.0.0.1:3000"     # redirect URIs are {public_url}/callback/{id}
//! [[connectors]]
//! id = "huggingface"                       # instance id, used in routes
//! factory = "huggingface-universal"        # the plugin's metadata id
//! config = { clientId = "…", clientSecret = "${HF_CLIENT_SECRET}" }
//! ```
//!
//! `${NAME}` inside any string value is replaced by the environment variable `NAME`; a variable
//! that is not set is an error naming it. Secrets thus stay out of the file.
//!
//! Several instances behind a load balancer share their pending sign-ins in Redis:
//!
//! ```toml
//! session_store = "redis://:${REDIS_PASSWORD}@10.0.0.5:6379/0"   # default: in memory
//! session_prefix = "broker-a"              # keys are `{prefix}:pending:…`; default `host-example`
//! ```
//!
//! The HTTP server's timers and caps, each optional (the defaults shown):
//!
//! ```toml
//! [server]
//! header_timeout_ms = 10000   # to receive a request's headers (and to wait for the next
//!                             # request on a kept-alive connection)
//! body_timeout_ms = 10000     # to receive a request's body
//! idle_timeout_ms = 60000     # a connection with no request running and no byte moving
//! max_connections = 10000     # served at once; more wait in the listen backlog
//! ```
//!
//! Sign-ins a client (a peer address; an IPv6 /64) may start, so that one client cannot fill
//! the pending sign-in store (the defaults shown; `per_minute = 0` disables the limit, e.g.
//! behind a reverse proxy, where every client has the proxy's address):
//!
//! ```toml
//! [sign_in]
//! per_minute = 60             # on average; beyond, 429 `sign_in_rate_limited` + Retry-After
//! burst = 20                  # at once
//! max_clients = 100000        # clients tracked at once
//! max_pending = 100000        # sign-ins kept in memory, used ones included; 0 = no cap
//! ```
//!
//! `max_pending` bounds the in-memory store as a whole (about 1.4 KB each), whatever the number
//! of clients: beyond it, 503 `too_many_pending_sign_ins` + Retry-After. A Redis store is
//! bounded by Redis's own `maxmemory`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::serve::ServerLimits;
use crate::sign_in_rate::SignInLimits;

/// A parsed, interpolated config. Connector configs are not yet validated: their plugins do that
/// when the broker starts ([`crate::registry::build_generation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// Scheme, host and optional path prefix, without a trailing slash.
    pub public_url: String,
    /// In file order.
    pub connectors: Vec<ConnectorConfig>,
    /// Where pending sign-ins live: `None` in memory (one instance), else a Redis URL shared by
    /// every instance of this broker.
    pub session_store: Option<SecretUrl>,
    /// Namespace of this broker's keys in a shared store (`{prefix}:pending:{key}`), so that one
    /// Redis can serve several brokers.
    pub session_prefix: String,
    /// The HTTP server's timers and caps (`[server]`).
    pub server: ServerLimits,
    /// The per-client rate of sign-ins (`[sign_in]`).
    pub sign_in: SignInLimits,
    /// The most sign-ins the in-memory store keeps, used ones included (`[sign_in]
    /// max_pending`); 0 means no cap.
    pub max_pending: usize,
}

/// The default [`BrokerConfig::max_pending`]: about 140 MB of pending sign-ins at most.
pub const DEFAULT_MAX_PENDING: usize = 100_000;

/// The default [`BrokerConfig::session_prefix`].
pub const DEFAULT_SESSION_PREFIX: &str = "host-example";

/// A URL that may carry a password (`redis://:secret@host/0`). `Debug` and `Display` show it
/// with the password replaced by `***`; [`SecretUrl::expose`] gives the real one.
#[derive(Clone, PartialEq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password: for connecting only, never for logs or messages.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***` (and the whole URL hidden if it does not
    /// parse, since it could then hold a password anywhere).
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                url.to_string()
            }
            Err(_) => "<unparsable URL>".into(),
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// One configured connector instance.
#[derive(Clone, PartialEq)]
pub struct ConnectorConfig {
    /// Instance id, used in routes (`/sign-in/{id}`): letters, digits, `-` and `_`.
    pub id: String,
    /// The plugin's metadata id, e.g. `huggingface-universal`.
    pub factory: String,
    /// Handed to the plugin as JSON. It holds secrets, so `Debug` does not print it.
    pub config: Value,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("id", &self.id)
            .field("factory", &self.factory)
            .field("config", &"<redacted>")
            .finish()
    }
}

/// Why a config cannot be used. Each names the connector and field at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config file is not valid: {0}")]
    Syntax(String),
    #[error("{location} needs environment variable `{name}`, which is not set")]
    MissingVariable { location: String, name: String },
    #[error("{location}: {problem}")]
    BadInterpolation { location: String, problem: String },
    #[error("`public_url` {0}")]
    PublicUrl(String),
    #[error("`session_store` {0}")]
    SessionStore(String),
    #[error("`session_prefix` `{0}` must be 1 to 64 letters, digits, `-`, `_` or `.`")]
    SessionPrefix(String),
    #[error("`server.{0}` must be at least 1")]
    ServerLimit(&'static str),
    #[error("`sign_in.{0}` must be at least 1 (or `per_minute` 0, no limit)")]
    SignInLimit(&'static str),
    #[error("connector `{0}`: `id` must be 1 to 64 letters, digits, `-` or `_`")]
    BadId(String),
    #[error("connector `{0}` is configured twice (instance ids must be unique)")]
    DuplicateId(String),
    #[error(
        "connector `{connector}`: `factory` `{factory}` is not a loaded plugin (loaded: {available})"
    )]
    UnknownFactory {
        connector: String,
        factory: String,
        available: String,
    },
    #[error("connector `{connector}`: invalid config field `{field}`: {message}")]
    InvalidConnector {
        connector: String,
        field: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    public_url: String,
    #[serde(default)]
    session_store: Option<String>,
    #[serde(default)]
    session_prefix: Option<String>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    sign_in: RawSignIn,
    #[serde(default)]
    connectors: Vec<RawConnector>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSignIn {
    per_minute: Option<u32>,
    burst: Option<u32>,
    max_clients: Option<usize>,
    max_pending: Option<usize>,
}

impl RawSignIn {
    fn limits(self) -> Result<SignInLimits, ConfigError> {
        let defaults = SignInLimits::default();
        let limits = SignInLimits {
            per_minute: self.per_minute.unwrap_or(defaults.per_minute),
            burst: self.burst.unwrap_or(defaults.burst),
            max_clients: self.max_clients.unwrap_or(defaults.max_clients),
        };
        match limits.per_minute > 0 {
            true if limits.burst == 0 => Err(ConfigError::SignInLimit("burst")),
            true if limits.max_clients == 0 => Err(ConfigError::SignInLimit("max_clients")),
            _ => Ok(limits),
        }
    }
}

impl RawServer {
    fn limits(self) -> Result<ServerLimits, ConfigError> {
        let defaults = ServerLimits::default();
        let millis = |value: Option<u64>, name, default: std::time::Duration| match value {
            Some(0) => Err(ConfigError::ServerLimit(name)),
            Some(ms) => Ok(std::time::Duration::from_millis(ms)),
            None => Ok(default),
        };
        Ok(ServerLimits {
            header_timeout: millis(
                self.header_timeout_ms,
                "header_timeout_ms",
                defaults.header_timeout,
            )?,
            body_timeout: millis(
                self.body_timeout_ms,
                "body_timeout_ms",
                defaults.body_timeout,
            )?,
            idle_timeout: millis(
                self.idle_timeout_ms,
                "idle_timeout_ms",
                defaults.idle_timeout,
            )?,
            max_connections: match self.max_connections {
                Some(0) => return Err(ConfigError::ServerLimit("max_connections")),
                Some(n) => n,
                None => defaults.max_connections,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    id: String,
    factory: String,
    #[serde(default)]
    config: toml::Table,
}

impl BrokerConfig {
    /// Reads `path`, taking `${NAME}` from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, |name| std::env::var(name).ok())
    }

    /// Parses TOML text; `env` answers `${NAME}` look-ups (tests pass their own).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(one_line(&e.to_string())))?;
        interpolate_file(&mut table, &env)?;
        let raw: RawConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(one_line(&e.to_string())))?;
        let config = BrokerConfig {
            public_url: public_url(&raw.public_url)?,
            connectors: raw
                .connectors
                .into_iter()
                .map(|c| ConnectorConfig {
                    id: c.id,
                    factory: c.factory,
                    config: table_to_json(c.config),
                })
                .collect(),
            session_store: raw.session_store.map(session_store).transpose()?,
            session_prefix: session_prefix(raw.session_prefix)?,
            server: raw.server.limits()?,
            max_pending: raw.sign_in.max_pending.unwrap_or(DEFAULT_MAX_PENDING),
            sign_in: raw.sign_in.limits()?,
        };
        config.check_ids()?;
        Ok(config)
    }

    /// Whether cookies must be `Secure` (an https public URL).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The redirect URI of instance `id`.
    pub fn redirect_uri(&self, id: &str) -> String {
        format!("{}/callback/{id}", self.public_url)
    }

    fn check_ids(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for c in &self.connectors {
            let valid_char = |ch: char| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_';
            if c.id.is_empty() || c.id.len() > 64 || !c.id.chars().all(valid_char) {
                return Err(ConfigError::BadId(c.id.clone()));
            }
            if !seen.insert(c.id.as_str()) {
                return Err(ConfigError::DuplicateId(c.id.clone()));
            }
        }
        Ok(())
    }
}

/// Interpolates every string in the file, naming the connector (by its id) in errors.
fn interpolate_file(
    table: &mut toml::Table,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        if key == "connectors" {
            if let toml::Value::Array(connectors) = value {
                for (index, connector) in connectors.iter_mut().enumerate() {
                    let label = connector_label(connector, index);
                    interpolate_value(connector, &label, "", env)?;
                }
                continue;
            }
        }
        interpolate_value(value, "config file", key, env)?;
    }
    Ok(())
}

/// `connector `huggingface``, or `connector #2` when the id is missing or itself interpolated.
fn connector_label(connector: &toml::Value, index: usize) -> String {
    match connector.get("id").and_then(toml::Value::as_str) {
        Some(id) if !id.contains("${") => format!("connector `{id}`"),
        _ => format!("connector #{}", index + 1),
    }
}

fn interpolate_value(
    value: &mut toml::Value,
    owner: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let join = |key: &str| match path {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    };
    match value {
        toml::Value::String(s) => {
            let location = format!("{owner} field `{path}`");
            *s = interpolate(s, env).map_err(|e| e.at(location))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, owner, &format!("{path}[{i}]"), env)?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                interpolate_value(item, owner, &join(key), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

enum InterpolationError {
    Missing(String),
    Bad(String),
}

impl InterpolationError {
    fn at(self, location: String) -> ConfigError {
        match self {
            Self::Missing(name) => ConfigError::MissingVariable { location, name },
            Self::Bad(problem) => ConfigError::BadInterpolation { location, problem },
        }
    }
}

/// Replaces each `${NAME}` (NAME: letters, digits, `_`, not starting with a digit).
fn interpolate(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| InterpolationError::Bad("`${` without a closing `}`".into()))?;
        let name = &after[..end];
        let valid = name.chars().next().is_some_and(|c| !c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(InterpolationError::Bad(format!(
                "`${{{name}}}` is not a valid variable name"
            )));
        }
        out.push_str(&env(name).ok_or_else(|| InterpolationError::Missing(name.into()))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An absolute http(s) URL without query or fragment; returned without a trailing slash.
fn public_url(raw: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(raw)
        .map_err(|e| ConfigError::PublicUrl(format!("is not a URL ({e}): {raw}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::PublicUrl(format!(
            "must be an http or https URL: {raw}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::PublicUrl(format!(
            "must not have a query or fragment: {raw}"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A `redis://` (or `redis+unix://`, `unix://`) URL. The error shows the URL redacted.
fn session_store(raw: String) -> Result<SecretUrl, ConfigError> {
    let url = SecretUrl::new(raw);
    let parsed = url::Url::parse(url.expose()).map_err(|e| {
        ConfigError::SessionStore(format!("is not a URL ({e}): {}", url.redacted()))
    })?;
    match parsed.scheme() {
        "redis" if parsed.host().is_some() => Ok(url),
        "redis+unix" | "unix" => Ok(url),
        "rediss" => Err(ConfigError::SessionStore(format!(
            "uses TLS (`rediss://`), which this build does not support: {}",
            url.redacted()
        ))),
        _ => Err(ConfigError::SessionStore(format!(
            "must be a `redis://host:port/db` URL: {}",
            url.redacted()
        ))),
    }
}

fn session_prefix(raw: Option<String>) -> Result<String, ConfigError> {
    let prefix = raw.unwrap_or_else(|| DEFAULT_SESSION_PREFIX.into());
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    match !prefix.is_empty() && prefix.len() <= 64 && prefix.chars().all(valid_char) {
        true => Ok(prefix),
        false => Err(ConfigError::SessionPrefix(prefix)),
    }
}

fn table_to_json(table: toml::Table) -> Value {
    Value::Object(
        table
            .into_iter()
            .map(|(k, v)| (k, toml_to_json(v)))
            .collect(),
    )
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        // JSON has no NaN or infinity; a plugin would refuse them anyway.
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => table_to_json(table),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SECRET").then(|| "s3cret".to_string())
    }

    #[test]
    fn interpolates_strings_anywhere_in_a_connector_config() {
        let c = BrokerConfig::parse(
            r#"public_url = "https://broker.example/"
            [[connectors]]
            id = "hf"
            factory = "huggingface-universal"
            config = { clientId = "id", clientSecret = "pre-${SECRET}-post", n = 3, list = ["${SECRET}"] }"#,
            env,
        )
        .unwrap();
        assert_eq!(c.public_url, "https://broker.example");
        assert!(c.is_https());
        let json = &c.connectors[0].config;
        assert_eq!(json["clientSecret"], "pre-s3cret-post");
        assert_eq!(json["list"][0], "s3cret");
        assert_eq!(json["n"], 3);
        assert_eq!(c.redirect_uri("hf"), "https://broker.example/callback/hf");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_missing_variable_names_it_and_the_connector() {
        let e = BrokerConfig::parse(
            r#"public_url = "http://127.0.0.1:3000"
            [[connectors]]
            id = "hf"
            factory = "f"
            config = { clientSecret = "${NOT_SET}" }"#,
            env,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "connector `hf` field `config.clientSecret` needs environment variable `NOT_SET`, which is not set"
        );
    }

    #[test]
    fn malformed_references_and_ids_are_refused() {
        let base = "public_url = \"http://127.0.0.1:3000\"\n[[connectors]]\nfactory = \"f\"\n";
        let bad = |rest: &str| BrokerConfig::parse(&format!("{base}{rest}"), env).unwrap_err();
        assert!(matches!(
            bad("id = \"a\"\nconfig = { x = \"${OPEN\" }"),
            ConfigError::BadInterpolation { .. }
        ));
        assert!(matches!(
            bad("id = \"a\"\nconfig = { x = \"${1X}\" }"),
            ConfigError::BadInterpolation { .. }
        ));
        assert_eq!(bad("id = \"a/b\""), ConfigError::BadId("a/b".into()));
        assert!(matches!(
            bad("id = \"a\"\nextra = 1"),
            ConfigError::Syntax(_)
        ));
    }

    #[test]
    fn session_store_is_interpolated_validated_and_redacted() {
        let parse =
            |rest: &str| BrokerConfig::parse(&format!("public_url = \"http://x\"\n{rest}"), env);
        let c = parse("").unwrap();
        assert_eq!(
            (c.session_store, c.session_prefix.as_str()),
            (None, DEFAULT_SESSION_PREFIX)
        );
        let c = parse(
            "session_store = \"redis://:${SECRET}@127.0.0.1:6379/0\"\nsession_prefix = \"b-1\"",
        )
        .unwrap();
        let url = c.session_store.clone().unwrap();
        assert_eq!(url.expose(), "redis://:s3cret@127.0.0.1:6379/0");
        assert_eq!(url.redacted(), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(c.session_prefix, "b-1");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!url.to_string().contains("s3cret"));
        for bad in ["http://x", "not a url", "rediss://:s3cret@h/0"] {
            let e = parse(&format!("session_store = \"{bad}\"")).unwrap_err();
            assert!(matches!(e, ConfigError::SessionStore(_)), "{bad}: {e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        let e = parse("session_store = \"redis://${NOPE}@h\"").unwrap_err();
        assert!(matches!(e, ConfigError::MissingVariable { .. }), "{e}");
        for bad in ["", "a:b", "a b"] {
            let e = parse(&format!("session_prefix = \"{bad}\"")).unwrap_err();
            assert_eq!(e, ConfigError::SessionPrefix(bad.into()));
        }
    }

    #[test]
    fn server_limits_default_and_are_read_in_milliseconds() {
        let parse =
            |rest: &str| BrokerConfig::parse(&format!("public_url = \"http://x\"\n{rest}"), env);
        assert_eq!(parse("").unwrap().server, ServerLimits::default());
        let c = parse("[server]\nheader_timeout_ms = 250\nmax_connections = 7").unwrap();
        assert_eq!(
            c.server.header_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(c.server.max_connections, 7);
        assert_eq!(c.server.idle_timeout, ServerLimits::default().idle_timeout);
        assert_eq!(
            parse("[server]\nbody_timeout_ms = 0"),
            Err(ConfigError::ServerLimit("body_timeout_ms"))
        );
        assert!(matches!(
            parse("[server]\nread_timeout = 1"),
            Err(ConfigError::Syntax(_))
        ));
        assert_eq!(parse("").unwrap().sign_in, SignInLimits::default());
        let c = parse("[sign_in]\nper_minute = 0").unwrap();
        assert_eq!(c.sign_in.per_minute, 0);
        assert_eq!(c.max_pending, DEFAULT_MAX_PENDING);
        assert_eq!(parse("[sign_in]\nmax_pending = 5").unwrap().max_pending, 5);
        assert_eq!(
            parse("[sign_in]\nburst = 0"),
            Err(ConfigError::SignInLimit("burst"))
        );
    }

    #[test]
    fn public_url_must_be_http_without_query() {
        for url in ["ftp://x", "not a url", "http://x/?q=1"] {
            let text = format!("public_url = \"{url}\"");
            assert!(matches!(
                BrokerConfig::parse(&text, env),
                Err(ConfigError::PublicUrl(_))
            ));
        }
    }
}
