//! The Hugging Face connector: one value per configured instance.

use std::sync::Arc;

use connector_api::plugin::Connector;
use connector_api::{
    Authorization, AuthorizationRequest, ConnectorError, Metadata, SocialUserInfo,
};
use serde_json::Value;

use crate::config::Config;
use crate::oidc::{IdTokenError, Oidc, invalid};
use crate::scrub::Scrubber;
use crate::session::Session;
use crate::token::TokenResponse;
use crate::{authorize, callback, metadata, orgs, token, userinfo};

/// A configured Hugging Face connector.
#[derive(Debug)]
pub struct HuggingFace {
    config: Config,
    oidc: Oidc,
}

impl HuggingFace {
    /// The whole callback: code → tokens → userinfo, then the id_token and organization checks.
    async fn sign_in(
        &self,
        callback: Value,
        session: Value,
    ) -> Result<(TokenResponse, SocialUserInfo), ConnectorError> {
        let code = callback::code(&callback)?;
        let session = Session::from_json(session)?;
        // Every credential of this sign-in, kept out of whatever a provider answer quotes.
        let held = [callback["state"].as_str(), session.nonce.as_deref()]
            .into_iter()
            .flatten()
            .fold(Scrubber::default(), Scrubber::with)
            .with(code.expose())
            .with(&session.code_verifier)
            .with_client(&self.config);
        let token = token::exchange_code(&self.config, &session, &code, held.clone()).await?;
        let held = token.add_to(held);
        // The id_token is checked before it is trusted for anything, userinfo included.
        let id_token_sub = match &session.nonce {
            Some(nonce) => Some(
                self.oidc
                    .verify(&self.config, token.id_token.as_ref(), nonce, &held)
                    .await?,
            ),
            None => None,
        };
        let raw = userinfo::fetch(&self.config, &token, held).await?;
        if id_token_sub.is_some_and(|sub| raw["sub"].as_str() != Some(sub.as_str())) {
            return Err(invalid(IdTokenError::WrongSub));
        }
        orgs::check_allowed(&self.config.allowed_orgs, &raw)?;
        Ok((token, userinfo::to_social_user(raw)?))
    }
}

impl Connector for HuggingFace {
    fn metadata() -> Metadata {
        metadata::metadata()
    }

    fn create(config: Value) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: Config::parse(config)?,
            oidc: Oidc::default(),
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
        Ok(self.sign_in(callback, session).await?.1)
    }

    async fn token_response_and_user_info(
        self: Arc<Self>,
        callback: Value,
        session: Value,
    ) -> Result<(connector_api::TokenResponse, SocialUserInfo), ConnectorError> {
        let (token, user) = self.sign_in(callback, session).await?;
        Ok((token.into(), user))
    }

    async fn access_token_by_refresh_token(
        self: Arc<Self>,
        refresh_token: String,
    ) -> Result<connector_api::TokenResponse, ConnectorError> {
        Ok(token::refresh(&self.config, &refresh_token).await?.into())
    }
}
