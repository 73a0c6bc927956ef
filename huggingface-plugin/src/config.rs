//! The connector's config: Logto's camelCase JSON, validated field by field.

use std::net::IpAddr;
use std::time::Duration;

use connector_api::{ConnectorError, ErrorCode};
use serde::Deserialize;
use url::Url;

use crate::constants::{DEFAULT_ENDPOINT, DEFAULT_SCOPE, DEFAULT_TIMEOUT, ENDPOINT_ENV};
use crate::json_error;
use crate::secret::Secret;

/// The config as the operator writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    client_id: String,
    client_secret: Option<Secret>,
    scope: Option<String>,
    endpoint: Option<String>,
    request_timeout_ms: Option<u64>,
    org_ids: Option<Vec<String>>,
    allowed_orgs: Option<Vec<String>>,
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    /// `None` for a public client, which relies on PKCE alone.
    pub client_secret: Option<Secret>,
    /// Space-separated scope tokens, normalised to single spaces.
    pub scope: String,
    /// The Hub's base URL, without a trailing slash.
    pub endpoint: String,
    pub timeout: Duration,
    /// Organizations the consent screen asks for (`orgIds` of the authorization URI).
    pub org_ids: Vec<String>,
    /// When not empty, only members of one of these (org `sub` or `preferred_username`) sign in.
    pub allowed_orgs: Vec<String>,
}

impl Config {
    /// Validates `value`; errors are `invalid_config` naming the field in the message and in `data.field`.
    pub fn parse(value: serde_json::Value) -> Result<Self, ConnectorError> {
        let raw: RawConfig = json_error::from_value(value).map_err(|e| match e.field.as_str() {
            "." => invalid("config", "must be a JSON object"),
            field => invalid(field, &e.what),
        })?;
        Ok(Self {
            client_id: non_empty("clientId", raw.client_id)?,
            client_secret: match raw.client_secret {
                Some(s) if s.expose().trim().is_empty() => {
                    return Err(invalid(
                        "clientSecret",
                        "must not be empty (omit it for a public client)",
                    ));
                }
                other => other,
            },
            scope: match raw.scope {
                Some(scope) => parse_scope(&scope).map_err(|m| invalid("scope", &m))?,
                None => DEFAULT_SCOPE.to_string(),
            },
            endpoint: endpoint(raw.endpoint).map_err(|m| invalid("endpoint", &m))?,
            timeout: match raw.request_timeout_ms {
                None => DEFAULT_TIMEOUT,
                Some(ms @ 1..=60_000) => Duration::from_millis(ms),
                Some(_) => return Err(invalid("requestTimeoutMs", "must be 1 to 60000")),
            },
            org_ids: names("orgIds", raw.org_ids)?,
            allowed_orgs: names("allowedOrgs", raw.allowed_orgs)?,
        })
    }

    /// `{endpoint}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    /// Whether `url` has the endpoint's origin (scheme, host and port): the only place the
    /// connector sends anything to.
    pub fn is_endpoint_origin(&self, url: &Url) -> bool {
        Url::parse(&self.endpoint).is_ok_and(|endpoint| endpoint.origin() == url.origin())
    }
}

fn invalid(field: &str, message: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::InvalidConfig,
        format!("invalid config `{field}`: {message}"),
    )
    .with_data(serde_json::json!({ "field": field }))
}

fn non_empty(field: &str, value: String) -> Result<String, ConnectorError> {
    match value.trim().is_empty() {
        true => Err(invalid(field, "must not be empty")),
        false => Ok(value),
    }
}

/// A list of organization ids or names: each non-empty, without spaces or commas.
fn names(field: &str, list: Option<Vec<String>>) -> Result<Vec<String>, ConnectorError> {
    let list = list.unwrap_or_default();
    match list
        .iter()
        .find(|n| n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == ','))
    {
        Some(bad) => Err(invalid(
            field,
            &format!("`{bad}` is not an organization id or name"),
        )),
        None => Ok(list),
    }
}

/// RFC 6749 §3.3: scope tokens are printable ASCII except space, `"` and `\`.
pub fn parse_scope(scope: &str) -> Result<String, String> {
    let tokens: Vec<&str> = scope.split_ascii_whitespace().collect();
    if tokens.is_empty() {
        return Err("must list at least one scope (omit it for `profile`)".into());
    }
    match tokens.iter().find(|t| {
        !t.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    }) {
        Some(bad) => Err(format!("`{bad}` is not a valid scope token")),
        None => Ok(tokens.join(" ")),
    }
}

/// The configured endpoint, else `HF_ENDPOINT`, else huggingface.co; without a trailing slash.
fn endpoint(configured: Option<String>) -> Result<String, String> {
    let text = configured
        .or_else(|| std::env::var(ENDPOINT_ENV).ok())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let url = provider_url(&text)?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A URL the connector may call: https, or http for a loopback host (tests, local mirrors),
/// without query, fragment or credentials.
pub fn provider_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must be https (http only for loopback hosts)".into()),
        other => return Err(format!("scheme `{other}` is not http(s)")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not carry a query, fragment or credentials".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(value: serde_json::Value) -> String {
        let e = Config::parse(value).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig);
        e.data.unwrap()["field"].as_str().unwrap().to_string()
    }

    #[test]
    fn defaults() {
        let c = Config::parse(json!({"clientId": "id", "clientSecret": "s"})).unwrap();
        assert_eq!(c.scope, "profile");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.endpoint.starts_with("http"));
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(json!({"clientSecret": "s"})), "clientId");
        assert_eq!(
            field_of(json!({"clientId": "id", "clientSecret": 5})),
            "clientSecret"
        );
        assert_eq!(
            field_of(json!({"clientId": 7, "clientSecret": "s"})),
            "clientId"
        );
        assert_eq!(
            field_of(json!({"clientId": "", "clientSecret": "s"})),
            "clientId"
        );
        assert_eq!(
            field_of(json!({"clientId": "i", "clientSecret": " "})),
            "clientSecret"
        );
        let base = |k: &str, v: serde_json::Value| {
            let mut c = json!({"clientId": "i", "clientSecret": "s"});
            c[k] = v;
            field_of(c)
        };
        assert_eq!(base("scope", json!(["profile"])), "scope");
        assert_eq!(base("scope", json!("  ")), "scope");
        assert_eq!(base("scope", json!("profile \"x\"")), "scope");
        assert_eq!(base("endpoint", json!("http://example.com")), "endpoint");
        assert_eq!(base("endpoint", json!("ftp://localhost")), "endpoint");
        assert_eq!(base("endpoint", json!("https://hf.co/?q=1")), "endpoint");
        assert_eq!(base("requestTimeoutMs", json!(0)), "requestTimeoutMs");
        assert_eq!(base("orgIds", json!("one")), "orgIds");
        assert_eq!(base("orgIds", json!(["a b"])), "orgIds");
        assert_eq!(base("allowedOrgs", json!([""])), "allowedOrgs");
        assert_eq!(base("allowedOrgs", json!([1])), "allowedOrgs[0]");
        assert_eq!(base("surprise", json!(1)), "surprise");
        assert_eq!(field_of(json!(42)), "config");
    }

    #[test]
    fn scope_is_normalised_and_endpoint_trimmed() {
        let c = Config::parse(json!({"clientId": "i", "clientSecret": "s",
            "scope": " openid   profile\temail ", "endpoint": "http://127.0.0.1:9/hub/"}))
        .unwrap();
        assert_eq!(c.scope, "openid profile email");
        assert_eq!(c.url("/oauth/token"), "http://127.0.0.1:9/hub/oauth/token");
    }

    #[test]
    fn public_clients_have_no_secret() {
        let c = Config::parse(json!({"clientId": "i", "orgIds": ["o1"], "allowedOrgs": ["acme"]}))
            .unwrap();
        assert!(c.client_secret.is_none());
        assert_eq!(
            (c.org_ids, c.allowed_orgs),
            (vec!["o1".into()], vec!["acme".into()])
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = Config::parse(json!({"clientId": "i", "clientSecret": "topsecret"})).unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
