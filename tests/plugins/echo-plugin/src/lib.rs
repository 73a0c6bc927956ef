//! Test plugin: a second, genuinely different connector for the loader tests.
//!
//! Everything it returns is derived from its inputs, so tests can assert exact values; the
//! `failWith` config and the `{"panic": true}` callback exercise the error and panic paths.

use std::sync::Arc;
use std::time::Duration;

use connector_api::plugin::Connector;
use connector_api::{
    Authorization, AuthorizationRequest, ConnectorError, ErrorCode, FormItem, FormItemType,
    Metadata, Platform, SelectItem, SocialUserInfo,
};
use serde_json::{Value, json};

/// Which build this is: `ECHO_PLUGIN_BUILD` at compile time, so that a test can make a second,
/// different build of the same plugin (for live reload) without touching the host.
pub const BUILD: &str = match option_env!("ECHO_PLUGIN_BUILD") {
    Some(build) => build,
    None => "1",
};

/// A 16×16 grey disc; a data URI so that the metadata needs no network.
const LOGO: &str = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PGNpcmNsZSBjeD0iOCIgY3k9IjgiIHI9IjciIGZpbGw9IiM2YjcyODAiLz48L3N2Zz4=";

pub struct Echo {
    greeting: String,
    fail_with: Option<String>,
}

/// Same shape as the Hugging Face plugin's errors: the field in the message and in `data.field`.
fn invalid(field: &str, problem: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::InvalidConfig,
        format!("invalid config `{field}`: {problem}"),
    )
    .with_data(json!({ "field": field }))
}

fn string_field(
    config: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ConnectorError> {
    match config.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(key, "must be a string")),
    }
}

impl Connector for Echo {
    fn metadata() -> Metadata {
        let en = |text: &str| [("en".to_string(), text.to_string())].into();
        Metadata {
            id: "echo-web".into(),
            target: "echo".into(),
            platform: Platform::Web,
            name: en("Echo"),
            description: en(&format!(
                "Signs in whoever presents a code; for tests. build={BUILD}"
            )),
            logo: LOGO.into(),
            logo_dark: None,
            readme: "# Echo\n\nA test connector: the user id is `echo-<code>`.\n".into(),
            form_items: vec![
                FormItem {
                    placeholder: Some("Hello".into()),
                    ..FormItem::text("greeting", "Greeting", true)
                },
                // A select with items, so that every part of a form item crosses the ABI.
                FormItem {
                    item_type: FormItemType::Select,
                    description: Some("Make user info fail with this error code.".into()),
                    select_items: ["general", "rate_limit_exceeded"]
                        .map(|code| SelectItem {
                            value: code.into(),
                            title: code.into(),
                        })
                        .into(),
                    ..FormItem::text("failWith", "Fail with", false)
                },
            ],
        }
    }

    fn create(config: Value) -> Result<Self, ConnectorError> {
        let Value::Object(config) = config else {
            return Err(invalid("config", "must be a JSON object"));
        };
        if let Some(unknown) = config
            .keys()
            .find(|k| !["greeting", "failWith"].contains(&k.as_str()))
        {
            return Err(invalid(unknown, "unknown field"));
        }
        Ok(Self {
            greeting: string_field(&config, "greeting")?
                .ok_or_else(|| invalid("greeting", "is required"))?,
            fail_with: string_field(&config, "failWith")?,
        })
    }

    fn authorization_uri(
        &self,
        request: AuthorizationRequest,
    ) -> Result<Authorization, ConnectorError> {
        let uri = url::Url::parse_with_params(
            "https://echo.invalid/authorize",
            [
                ("state", &request.state),
                ("redirect_uri", &request.redirect_uri),
            ],
        )
        .map_err(|e| ConnectorError::general(e.to_string()))?;
        Ok(Authorization {
            uri: uri.into(),
            session: json!({ "redirectUri": request.redirect_uri, "greeting": self.greeting }),
        })
    }

    async fn user_info(
        self: Arc<Self>,
        callback: Value,
        _session: Value,
    ) -> Result<SocialUserInfo, ConnectorError> {
        // A real await on a timer: this only completes if the plugin's own runtime drives it.
        // `sleepMs` makes a call last long enough to still be in flight at a shutdown.
        let pause = callback["sleepMs"].as_u64().unwrap_or(1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        // JSON `true` from direct calls, the string "true" from a host's query string.
        if callback["panic"] == true || callback["panic"] == "true" {
            panic!("echo-plugin: the callback asked for a panic");
        }
        if let Some(code) = &self.fail_with {
            let parsed = ErrorCode::parse(code).unwrap_or(ErrorCode::General);
            return Err(ConnectorError::new(parsed, format!("failWith `{code}`")));
        }
        let Some(code) = callback["code"].as_str() else {
            return Err(ConnectorError::new(
                ErrorCode::InvalidRequestParameters,
                "callback has no `code`",
            ));
        };
        Ok(SocialUserInfo {
            id: format!("echo-{code}"),
            email: None,
            phone: None,
            name: Some(self.greeting.clone()),
            avatar: None,
            raw_data: json!({ "callback": callback, "build": BUILD }),
        })
    }
}

connector_api::export_connector!(Echo);
