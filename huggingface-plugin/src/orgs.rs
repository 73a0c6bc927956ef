//! Organization gating: `allowedOrgs` against the userinfo's `orgs`.

use connector_api::{ConnectorError, ErrorCode};
use serde_json::Value;

/// Refuses a user who belongs to none of `allowed` (each an org `sub` or `preferred_username`).
/// The message names the rule, not the user's organizations.
pub fn check_allowed(allowed: &[String], userinfo: &Value) -> Result<(), ConnectorError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let member = userinfo["orgs"].as_array().is_some_and(|orgs| {
        orgs.iter().any(|org| {
            ["sub", "preferred_username"]
                .iter()
                .filter_map(|key| org[key].as_str())
                .any(|id| allowed.iter().any(|a| a == id))
        })
    });
    match member {
        true => Ok(()),
        false => Err(ConnectorError::new(
            ErrorCode::AuthorizationFailed,
            "the user belongs to none of the organizations in `allowedOrgs`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn membership_by_sub_or_name() {
        let user = json!({"orgs": [{"sub": "s1", "preferred_username": "acme"}]});
        assert!(check_allowed(&[], &json!({})).is_ok());
        assert!(check_allowed(&["acme".into()], &user).is_ok());
        assert!(check_allowed(&["s1".into()], &user).is_ok());
        let e = check_allowed(&["other".into()], &user).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthorizationFailed);
        assert!(!e.message.contains("acme"));
        assert!(check_allowed(&["acme".into()], &json!({"sub": "x"})).is_err());
    }
}
