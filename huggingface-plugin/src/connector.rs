//! The Hugging Face connector: one value per configured instance.

use std::sync::Arc;

use connector_api::plugin::Connector;
use connector_api::{
    Authorization, AuthorizationRequest, ConnectorError, Metadata, SocialUserInfo,
};
use serde_json::Value;

use crate::config::Config;
use crate::session::Session;
use crate::{authorize, callback, metadata, token, userinfo};

/// A configured Hugging Face connector.
#[derive(Debug)]
pub struct HuggingFace {
    config: Config,
}

impl Connector for HuggingFace {
    fn metadata() -> Metadata {
        metadata::metadata()
    }

    fn create(config: Value) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: Config::parse(config)?,
        })
    }

    fn authorization_uri(
        &self,
        request: AuthorizationRequest,
    ) -> Result<Authorization, ConnectorError> {
        authorize::authorization_uri(&self.config, request)
    }

    async fn user_info(
        self: Arc<Self>,
        callback: Value,
        session: Value,
    ) -> Result<SocialUserInfo, ConnectorError> {
        let code = callback::code(&callback)?;
        let session = Session::from_json(session)?;
        let token = token::exchange_code(&self.config, &session, &code).await?;
        let raw = userinfo::fetch(&self.config, &token).await?;
        userinfo::to_social_user(raw)
    }
}
