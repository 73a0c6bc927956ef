//! The connector model in ordinary Rust types, as Logto's connector kit names it.
//!
//! Hosts and plugins use these; [`crate::abi`] converts them to and from the stable-ABI types.

use std::collections::BTreeMap;

use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

/// Language tag (e.g. `en`, `zh-CN`) → text. Must contain `en`.
pub type I18nText = BTreeMap<String, String>;

/// Where a connector can be used. Crosses the plugin boundary as is.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, StableAbi)]
pub enum Platform {
    Universal,
    Web,
    Native,
}

/// The kind of input an admin form shows for a config field. Crosses the plugin boundary as is.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, StableAbi)]
pub enum FormItemType {
    Text,
    Number,
    MultilineText,
    Switch,
    Select,
    MultiSelect,
    Json,
}

/// One choice of a `Select` or `MultiSelect` form item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectItem {
    pub value: String,
    pub title: String,
}

/// One field of the connector's admin form; `key` is the config field it edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormItem {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub item_type: FormItemType,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tooltip: Option<String>,
    pub is_confidential: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub select_items: Vec<SelectItem>,
}

impl FormItem {
    /// A text field with only the required parts set.
    pub fn text(key: &str, label: &str, required: bool) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            item_type: FormItemType::Text,
            required,
            default_value: None,
            placeholder: None,
            description: None,
            tooltip: None,
            is_confidential: false,
            select_items: Vec::new(),
        }
    }
}

/// What a connector says about itself (Logto's `ConnectorMetadata`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Factory id, unique among loaded connectors, e.g. `huggingface-universal`.
    pub id: String,
    /// The identity provider, e.g. `huggingface`.
    pub target: String,
    pub platform: Platform,
    pub name: I18nText,
    pub description: I18nText,
    /// A data URI or URL.
    pub logo: String,
    pub logo_dark: Option<String>,
    /// Markdown for operators.
    pub readme: String,
    pub form_items: Vec<FormItem>,
}

impl Metadata {
    /// The English name, which every valid metadata has.
    pub fn english_name(&self) -> &str {
        self.name.get("en").map_or(self.id.as_str(), String::as_str)
    }

    /// Checks the rules Logto enforces at load: non-empty ids, `en` texts, form item keys unique.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.trim().is_empty() || self.target.trim().is_empty() {
            return Err("metadata id and target must not be empty".into());
        }
        for (field, text) in [("name", &self.name), ("description", &self.description)] {
            if !text.contains_key("en") {
                return Err(format!("metadata {field} has no `en` text"));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        match self.form_items.iter().find(|item| !keys.insert(&item.key)) {
            Some(item) => Err(format!("form item `{}` appears twice", item.key)),
            None => Ok(()),
        }
    }
}

/// Input of the authorization-URI call (Logto's `getAuthorizationUri` payload).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRequest {
    pub state: String,
    pub redirect_uri: String,
    pub connector_id: String,
    pub jti: String,
    pub user_agent: String,
    /// Overrides the configured scope for this sign-in.
    pub scope: Option<String>,
}

/// Output of the authorization-URI call: where to send the browser, and what to keep until the callback.
#[derive(Clone, PartialEq)]
pub struct Authorization {
    pub uri: String,
    /// Opaque to the host; handed back unchanged to [`user info`](crate::Connector::user_info).
    /// It may hold a PKCE verifier, so it is a secret and is not printed by `Debug`.
    pub session: serde_json::Value,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("uri", &self.uri)
            .field("session", &"<redacted>")
            .finish()
    }
}

/// The signed-in user as the provider describes them (Logto's `SocialUserInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocialUserInfo {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// The provider's user JSON as received.
    pub raw_data: serde_json::Value,
}

/// The provider's token response (Logto's `TokenResponse`), for hosts that store upstream tokens.
///
/// Every token is a secret: `Debug` prints only which ones are present.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: Option<String>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |t: &Option<String>| t.as_ref().map(|_| "<redacted>");
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("id_token", &present(&self.id_token))
            .field("refresh_token", &present(&self.refresh_token))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        Metadata {
            id: "x".into(),
            target: "x".into(),
            platform: Platform::Web,
            name: [("en".to_string(), "X".to_string())].into(),
            description: [("en".to_string(), "X".to_string())].into(),
            logo: String::new(),
            logo_dark: None,
            readme: String::new(),
            form_items: vec![FormItem::text("a", "A", true)],
        }
    }

    #[test]
    fn metadata_rules() {
        assert_eq!(metadata().validate(), Ok(()));
        let mut m = metadata();
        m.description.clear();
        assert_eq!(
            m.validate().unwrap_err(),
            "metadata description has no `en` text"
        );
        let mut m = metadata();
        m.form_items.push(FormItem::text("a", "again", false));
        assert_eq!(m.validate().unwrap_err(), "form item `a` appears twice");
        let mut m = metadata();
        m.id = " ".into();
        assert!(m.validate().is_err());
    }

    #[test]
    fn metadata_serializes_with_logto_names() {
        let json = serde_json::to_value(metadata()).unwrap();
        assert_eq!(json["formItems"][0]["type"], "Text");
        assert_eq!(json["formItems"][0]["isConfidential"], false);
        assert_eq!(json["platform"], "Web");
        assert!(json.get("logoDark").is_some());
    }

    #[test]
    fn token_debug_hides_every_token() {
        let t = TokenResponse {
            access_token: "hf_oauth_a".into(),
            id_token: Some("eyJid".into()),
            refresh_token: Some("hf_oauth_r".into()),
            scope: Some("profile".into()),
            ..Default::default()
        };
        let printed = format!("{t:?}");
        for secret in ["hf_oauth_a", "eyJid", "hf_oauth_r"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("profile"));
    }

    #[test]
    fn authorization_debug_hides_the_session() {
        let a = Authorization {
            uri: "https://p/x".into(),
            session: serde_json::json!({"codeVerifier": "s3cret"}),
        };
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
