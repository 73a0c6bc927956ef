//! Provider text made fit to quote: credentials removed, control characters dropped, cut short.
//!
//! A provider may echo what it was sent (a debug error page, an `error_description` quoting
//! the request), and whatever is quoted reaches the broker's log, page and JSON. So every
//! request carries a [`Scrubber`] holding the credentials it sent and those the sign-in holds,
//! and provider text is only ever quoted through [`Scrubber::quote`].

use std::fmt;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::Config;
use crate::constants::MAX_ERROR_TEXT;

/// What a credential becomes in quoted text.
pub const REDACTED: &str = "[redacted]";

/// Shorter values given to [`Scrubber::with`] are left alone: none of the sign-in's credentials
/// is that short (codes, verifiers, nonces and tokens have 22 characters or more; a broker's
/// states as many), and scrubbing a one-letter test state would garble every message. The
/// client secret is scrubbed whatever its length.
const MIN_SCRUBBED_LEN: usize = 8;

/// RFC 3986 §2.3: all but the unreserved characters are percent-encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Credentials to keep out of quoted provider text, each in every encoding a provider may
/// echo it. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Scrubber {
    needles: Vec<String>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} forms)", self.needles.len())
    }
}

impl Scrubber {
    /// This one with `value` (a code, verifier, state, nonce or token) added, unless it is
    /// shorter than [`MIN_SCRUBBED_LEN`] characters.
    pub fn with(mut self, value: &str) -> Self {
        if value.chars().count() >= MIN_SCRUBBED_LEN {
            self.add(value);
        }
        self
    }

    /// This one with the client's credentials added: the secret, and the Basic header's
    /// `base64(id:secret)` and `base64("Basic " + that)`, each base64 alphabet, padded or not.
    pub fn with_client(mut self, config: &Config) -> Self {
        let Some(secret) = &config.client_secret else {
            return self;
        };
        self.add(secret.expose());
        let pair = format!("{}:{}", config.client_id, secret.expose());
        let header = format!("Basic {}", STANDARD.encode(&pair));
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            self.add(&engine.encode(&pair));
            self.add(&engine.encode(&header));
        }
        self
    }

    /// Adds `value` raw, form- and percent-encoded (either hex case), JSON-escaped (with and
    /// without `\/`) and HTML-escaped.
    fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let strict = utf8_percent_encode(value, STRICT).to_string();
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json
            .get(1..json.len().saturating_sub(1))
            .unwrap_or_default();
        let html = value
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        for form in [
            value.to_owned(),
            form.replace('+', "%20"),
            lowercase_hex(&form),
            form,
            lowercase_hex(&strict),
            strict,
            json.replace('/', "\\/"),
            json.to_owned(),
            html,
        ] {
            if !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
    }

    /// `text` with every credential replaced by [`REDACTED`], without control characters, cut to [`MAX_ERROR_TEXT`] characters. Control
    /// characters go first, so that none can split a credential; the cut comes last, so that
    /// none is cut into a fragment that no longer matches.
    pub fn quote(&self, text: &str) -> String {
        let clean: String = text.chars().filter(|c| !c.is_control()).collect();
        let scrubbed = self.scrub(&clean);
        match scrubbed.char_indices().nth(MAX_ERROR_TEXT) {
            Some((cut, _)) => format!("{}…", &scrubbed[..cut]),
            None => scrubbed,
        }
    }

    /// `text` with each stretch covered by one or more credentials (overlapping ones merged)
    /// replaced by one [`REDACTED`].
    fn scrub(&self, text: &str) -> String {
        if self.needles.is_empty() {
            return text.to_owned();
        }
        let Ok(matcher) = AhoCorasick::new(&self.needles) else {
            // Only a pattern set too large for the automaton fails: quote nothing rather
            // than risk a credential.
            return REDACTED.to_owned();
        };
        let mut spans: Vec<(usize, usize)> = matcher
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end) in spans {
            if end <= done {
                continue;
            }
            if start >= done {
                out.push_str(&text[done..start]);
                out.push_str(REDACTED);
            }
            // Overlapping a stretch already redacted: extend it.
            done = end;
        }
        out.push_str(&text[done..]);
        out
    }
}

/// `%2F` → `%2f`, the rest unchanged.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "s3cr/t+v@l&ue=x y\"q\\z~*'<>";

    fn client() -> Config {
        Config::parse(json!({"clientId": "app", "clientSecret": SECRET})).unwrap()
    }

    fn scrubber() -> Scrubber {
        Scrubber::default()
            .with_client(&client())
            .with("the-code")
            .with("hf_oauth_token")
    }

    /// Each way a provider may write the secret.
    fn echoes() -> Vec<String> {
        let form: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let json = serde_json::to_string(SECRET).unwrap();
        let pair = format!("app:{SECRET}");
        vec![
            SECRET.to_owned(),
            form.clone(),
            form.replace('+', "%20"),
            lowercase_hex(&form),
            utf8_percent_encode(SECRET, STRICT).to_string(),
            lowercase_hex(&utf8_percent_encode(SECRET, STRICT).to_string()),
            json[1..json.len() - 1].to_owned(),
            json[1..json.len() - 1].replace('/', "\\/"),
            "s3cr/t+v@l&amp;ue=x y&quot;q\\z~*&#39;&lt;&gt;".to_owned(),
            STANDARD.encode(&pair),
            URL_SAFE_NO_PAD.encode(&pair),
            STANDARD.encode(format!("Basic {}", STANDARD.encode(&pair))),
        ]
    }

    #[test]
    fn every_encoding_of_the_secret_is_redacted() {
        let s = scrubber();
        for echo in echoes() {
            let quoted = s.quote(&format!("before {echo} after"));
            assert_eq!(quoted, format!("before {REDACTED} after"), "{echo}");
        }
    }

    #[test]
    fn the_basic_header_and_other_values_are_redacted_where_they_stand() {
        let basic = STANDARD.encode(format!("app:{SECRET}"));
        let text = format!(
            "POST /oauth/token\r\nauthorization: Basic {basic}\r\n\r\ncode=the-code&x=1 \
             {{\"access_token\":\"hf_oauth_token\"}}"
        );
        assert_eq!(
            scrubber().quote(&text),
            "POST /oauth/tokenauthorization: Basic [redacted]code=[redacted]&x=1 \
             {\"access_token\":\"[redacted]\"}"
        );
    }

    #[test]
    fn a_control_character_cannot_split_a_credential() {
        assert_eq!(scrubber().quote("the-\u{0}co\rde"), REDACTED);
    }

    #[test]
    fn scrubbing_comes_before_the_cut() {
        let text = format!("{}the-code", "x".repeat(MAX_ERROR_TEXT - 3));
        let quoted = scrubber().quote(&text);
        assert!(!quoted.contains("the-"), "{quoted}");
        assert!(quoted.ends_with('…'));
        assert_eq!(quoted.chars().count(), MAX_ERROR_TEXT + 1);
    }

    #[test]
    fn overlapping_values_leave_no_fragment() {
        let s = Scrubber::default().with("abcdefgh").with("efghijkl");
        assert_eq!(s.quote("xabcdefghijklx"), "x[redacted]x");
        assert_eq!(s.quote("efghijkl abcdefgh"), "[redacted] [redacted]");
        assert_eq!(s.quote("abcdefghabcdefgh"), "[redacted][redacted]");
    }

    #[test]
    fn without_credentials_text_is_only_cleaned_and_cut() {
        let s = Scrubber::default().with("");
        assert_eq!(s.quote("a\u{1b}[31mb"), "a[31mb");
        assert_eq!(
            s.quote(&"x".repeat(1000)).chars().count(),
            MAX_ERROR_TEXT + 1
        );
    }

    #[test]
    fn short_values_are_left_but_a_short_client_secret_is_not() {
        let s = Scrubber::default().with("st").with("1234567");
        assert_eq!(
            s.quote("access_denied st 1234567"),
            "access_denied st 1234567"
        );
        let short = Config::parse(json!({"clientId": "app", "clientSecret": "s"})).unwrap();
        let s = Scrubber::default().with_client(&short);
        assert_eq!(s.quote("secret=s"), "[redacted]ecret=[redacted]");
    }

    #[test]
    fn a_public_client_adds_no_secret_and_debug_shows_no_value() {
        let public = Config::parse(json!({"clientId": "app"})).unwrap();
        let s = Scrubber::default().with_client(&public);
        assert_eq!(s.quote("app:anything"), "app:anything");
        let debug = format!("{:?}", scrubber());
        assert!(
            !debug.contains("the-code") && !debug.contains("s3cr"),
            "{debug}"
        );
    }
}
