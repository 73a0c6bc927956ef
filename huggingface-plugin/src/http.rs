//! The plugin's one HTTP client: requests only to the configured endpoint's origin, answers
//! read within limits, and quoted only through their [`Scrubber`].

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use connector_api::{ConnectorError, ErrorCode};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::constants::MAX_BODY_BYTES;
use crate::json_error;
use crate::scrub::Scrubber;

/// One client for the whole plugin: connection pools are shared by every instance and sign-in.
/// Redirects are not followed: an OAuth endpoint that redirects is misconfigured or hostile.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("huggingface-connector/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's fixed settings are valid")
});

/// The shared client.
pub fn client() -> &'static reqwest::Client {
    &CLIENT
}

/// Which provider call failed; it starts every error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Token,
    Refresh,
    Userinfo,
    Discovery,
    Jwks,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Token => "token request",
            Step::Refresh => "refresh request",
            Step::Userinfo => "userinfo request",
            Step::Discovery => "discovery request",
            Step::Jwks => "JWKS request",
        })
    }
}

/// A provider answer, read whole (at most [`MAX_BODY_BYTES`]). Its body is private: it is
/// parsed, or quoted through the scrubber of the request that brought it, nothing else.
pub struct Reply {
    pub step: Step,
    pub status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    scrubber: Scrubber,
}

/// Sends `request` with the config's timeout covering connect, headers and body, after
/// checking that it goes to the endpoint's origin. `scrubber` holds every credential the
/// request carries or the sign-in holds; the reply quotes nothing without it.
pub async fn send(
    config: &Config,
    request: RequestBuilder,
    step: Step,
    scrubber: Scrubber,
) -> Result<Reply, ConnectorError> {
    let timeout = config.timeout;
    let failed = |e: reqwest::Error| transport_error(step, timeout, e);
    let (client, request) = request.timeout(timeout).build_split();
    let request = request.map_err(failed)?;
    if !config.is_endpoint_origin(request.url()) {
        return Err(ConnectorError::general(format!(
            "{step}: refused to call outside the endpoint's origin"
        )));
    }
    let mut response = client.execute(request).await.map_err(failed)?;
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large(step));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large(step));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        step,
        status: response.status(),
        headers: response.headers().clone(),
        body,
        scrubber,
    })
}

fn transport_error(step: Step, timeout: Duration, e: reqwest::Error) -> ConnectorError {
    let what = if e.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else if e.is_connect() {
        "could not connect to the provider".to_string()
    } else {
        // Without the URL: it names only the endpoint, but keep messages uniform and short.
        format!("failed: {}", e.without_url())
    };
    ConnectorError::general(format!("{step} {what}"))
}

fn too_large(step: Step) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::InvalidResponse,
        format!("{step}: response body larger than {MAX_BODY_BYTES} bytes"),
    )
}

impl Reply {
    /// Parses the body as `T`. Messages name the field at fault but never quote a value,
    /// since a value may be a token.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        json_error::from_slice(&self.body).map_err(|e| {
            ConnectorError::new(
                ErrorCode::InvalidResponse,
                format!("{}: unexpected response ({})", self.step, e.what),
            )
        })
    }

    /// The body parsed as `T`, or `None`: for optional shapes such as an OAuth error body.
    pub fn parse<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text for an error message (see [`Scrubber::quote`]).
    pub fn excerpt(&self) -> String {
        self.quote(&String::from_utf8_lossy(&self.body))
    }

    /// The credentials this reply's text is scrubbed of.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// `text`, taken from this reply, made fit for an error message (see [`Scrubber::quote`]).
    pub fn quote(&self, text: &str) -> String {
        self.scrubber.quote(text)
    }

    /// `rate_limit_exceeded`, with the seconds to wait when the provider says.
    pub fn rate_limited(&self) -> ConnectorError {
        let error = ConnectorError::new(
            ErrorCode::RateLimitExceeded,
            format!("{}: rate limited by the provider (HTTP 429)", self.step),
        );
        match retry_after_secs(&self.headers) {
            Some(secs) => error.with_data(serde_json::json!({ "retryAfterSecs": secs })),
            None => error,
        }
    }

    /// `general` for a status the step does not expect, with the body's excerpt.
    pub fn unexpected_status(&self) -> ConnectorError {
        ConnectorError::general(format!(
            "{} failed with HTTP {}: {}",
            self.step,
            self.status.as_u16(),
            self.excerpt()
        ))
    }
}

/// `Retry-After: <secs>`, else Hugging Face's `RateLimit: "api";r=0;t=<secs>`.
fn retry_after_secs(headers: &HeaderMap) -> Option<u64> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    header(RETRY_AFTER.as_str())
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| {
            header("ratelimit")?
                .split(';')
                .find_map(|part| part.trim().strip_prefix("t=")?.parse().ok())
        })
}

#[cfg(test)]
impl Reply {
    /// A reply as if `step` had been answered `status`, `headers` and `body`.
    pub fn for_test(step: Step, status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> Reply {
        Reply {
            step,
            status,
            headers,
            body,
            scrubber: Scrubber::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::constants::MAX_ERROR_TEXT;

    use super::*;

    fn reply(headers: &[(&'static str, &str)], body: &str) -> Reply {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        let body = body.as_bytes().to_vec();
        Reply::for_test(Step::Token, StatusCode::TOO_MANY_REQUESTS, map, body)
    }

    #[test]
    fn retry_after_from_either_header() {
        let wait = |r: Reply| r.rate_limited().data.unwrap()["retryAfterSecs"].clone();
        assert_eq!(wait(reply(&[("retry-after", "12")], "")), 12);
        assert_eq!(wait(reply(&[("ratelimit", "\"api\";r=0;t=41")], "")), 41);
        assert_eq!(reply(&[], "").rate_limited().data, None);
    }

    #[test]
    fn json_errors_never_quote_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: u64,
        }
        let e = reply(&[], r#"{"n": "hf_oauth_secret"}"#)
            .json::<T>()
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidResponse);
        assert!(!e.message.contains("hf_oauth_secret"), "{}", e.message);
        assert!(e.message.contains("`n`"), "{}", e.message);
        let e = reply(&[], "{}").json::<T>().unwrap_err();
        assert!(e.message.contains("missing field `n`"), "{}", e.message);
        let e = reply(&[], "<html>").json::<T>().unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        assert!(e.message.starts_with("token request: unexpected response"));
    }

    #[test]
    fn excerpt_is_short_and_clean() {
        let long = format!("a\u{1b}[31m{}", "x".repeat(1000));
        let e = reply(&[], &long).excerpt();
        assert!(e.chars().count() <= MAX_ERROR_TEXT + 1);
        assert!(!e.contains('\u{1b}'));
    }

    #[test]
    fn the_excerpt_goes_through_the_request_s_scrubber() {
        let mut r = reply(&[], "echo: code=the-code&x=1");
        r.scrubber = Scrubber::default().with("the-code");
        assert_eq!(r.excerpt(), "echo: code=[redacted]&x=1");
        assert_eq!(
            r.unexpected_status().message,
            "token request failed with HTTP 429: echo: code=[redacted]&x=1"
        );
        assert_eq!(r.quote("desc the-code"), "desc [redacted]");
    }

    /// A URL on another origin is refused before anything connects to it.
    #[tokio::test]
    async fn nothing_is_sent_outside_the_endpoint_s_origin() {
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = elsewhere.local_addr().unwrap().port();
        let config = Config::parse(serde_json::json!({
            "clientId": "i", "endpoint": format!("http://127.0.0.1:{}", port ^ 1)
        }))
        .unwrap();
        for url in [
            format!("http://127.0.0.1:{port}/oauth/jwks"),
            format!("http://localhost:{}/oauth/jwks", port ^ 1),
            format!("https://127.0.0.1:{}/oauth/jwks", port ^ 1),
        ] {
            let request = client().get(&url);
            let e = send(&config, request, Step::Jwks, Scrubber::default())
                .await
                .err()
                .expect("refused");
            assert_eq!(
                e.message,
                "JWKS request: refused to call outside the endpoint's origin"
            );
        }
        let accepted = tokio::time::timeout(Duration::from_millis(100), elsewhere.accept()).await;
        assert!(accepted.is_err(), "a connection was made");
    }
}
