//! `application/x-www-form-urlencoded` parameters (query strings and form bodies).

use std::collections::HashMap;

/// Decoded parameters; each name at most once.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Decodes `encoded`; `Err(name)` when a parameter is repeated (RFC 6749 §3.1).
    pub(crate) fn parse(encoded: &str) -> Result<Params, String> {
        let mut params = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()).into_owned() {
            if params.contains_key(&name) {
                return Err(name);
            }
            params.insert(name, value);
        }
        Ok(Params(params))
    }

    /// The value of `name`; a parameter sent without a value counts as omitted.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}
