//! `{endpoint}/oauth/userinfo` and its mapping to [`SocialUserInfo`].

use connector_api::{ConnectorError, ErrorCode, SocialUserInfo};
use serde_json::Value;

use crate::config::Config;
use crate::constants::USERINFO_PATH;
use crate::http::{self, Step};
use crate::scrub::Scrubber;
use crate::token::TokenResponse;

/// GETs the user with the access token; `held` is what the sign-in holds besides.
pub async fn fetch(
    config: &Config,
    token: &TokenResponse,
    held: Scrubber,
) -> Result<Value, ConnectorError> {
    let request = http::client()
        .get(config.url(USERINFO_PATH))
        .bearer_auth(token.access_token.expose())
        .header(reqwest::header::ACCEPT, "application/json");
    let carried = held.with(token.access_token.expose());
    let reply = http::send(config, request, Step::Userinfo, carried).await?;
    match reply.status.as_u16() {
        200..=299 => reply.json(),
        401 => Err(ConnectorError::new(
            ErrorCode::SocialAccessTokenInvalid,
            "userinfo request: access token refused (HTTP 401)",
        )),
        429 => Err(reply.rate_limited()),
        _ => Err(reply.unexpected_status()),
    }
}

/// Logto's mapping: `sub`→id, `name`, `picture`→avatar, `email`; null or absent fields omitted,
/// the whole JSON kept as rawData. An email whose `email_verified` is `false` is left out
/// (it stays in rawData): a broker may link accounts by email.
pub fn to_social_user(raw: Value) -> Result<SocialUserInfo, ConnectorError> {
    let invalid = |what: &str| {
        ConnectorError::new(
            ErrorCode::InvalidResponse,
            format!("userinfo request: unexpected response ({what})"),
        )
    };
    let Some(object) = raw.as_object() else {
        return Err(invalid("not a JSON object"));
    };
    let optional = |key: &str| match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&format!("`{key}` is not a string"))),
    };
    let id = optional("sub")?.ok_or_else(|| invalid("no string `sub`"))?;
    let verified = object.get("email_verified") != Some(&Value::Bool(false));
    Ok(SocialUserInfo {
        id,
        email: optional("email")?.filter(|_| verified),
        phone: None,
        name: optional("name")?,
        avatar: optional("picture")?,
        raw_data: raw,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn logto_mapping() {
        let raw = json!({"sub": "id", "name": "name", "email": "email", "picture": "picture"});
        let user = to_social_user(raw.clone()).unwrap();
        assert_eq!(user.id, "id");
        assert_eq!(user.name.as_deref(), Some("name"));
        assert_eq!(user.email.as_deref(), Some("email"));
        assert_eq!(user.avatar.as_deref(), Some("picture"));
        assert_eq!(user.raw_data, raw);
    }

    #[test]
    fn unverified_email_is_left_out() {
        let raw = json!({"sub": "1", "email": "a@b.c", "email_verified": false});
        let user = to_social_user(raw.clone()).unwrap();
        assert_eq!(user.email, None);
        assert_eq!(user.raw_data["email"], "a@b.c");
        let raw = json!({"sub": "1", "email": "a@b.c", "email_verified": true});
        assert_eq!(to_social_user(raw).unwrap().email.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn nulls_are_omitted_and_bad_shapes_refused() {
        let user = to_social_user(json!({"sub": "1", "name": null})).unwrap();
        assert_eq!(user.name, None);
        for bad in [
            json!({"id": "id"}),
            json!({"sub": 5}),
            json!([1]),
            json!({"sub": "1", "email": 3}),
        ] {
            assert_eq!(
                to_social_user(bad).unwrap_err().code,
                ErrorCode::InvalidResponse
            );
        }
    }
}
