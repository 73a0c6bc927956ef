//! Host side of a configured connector instance: ordinary Rust calls over the ABI.

use std::panic::AssertUnwindSafe;

use abi_stable::std_types::{RResult, Tuple2};
use async_ffi::FfiFuture;
use futures_util::FutureExt as _;

use crate::abi::{FfiConnectorBox, FfiError};
use crate::{Authorization, AuthorizationRequest, ConnectorError, SocialUserInfo, TokenResponse};

/// A connector instance built by a plugin from one config. Cheap to share behind an `Arc`.
pub struct Connector {
    inner: FfiConnectorBox,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(inner: FfiConnectorBox) -> Self {
        Self { inner }
    }

    /// The provider's authorization URI for one sign-in and the session to keep until the callback.
    pub fn authorization_uri(
        &self,
        request: AuthorizationRequest,
    ) -> Result<Authorization, ConnectorError> {
        result(self.inner.authorization_uri(request.into()))
    }

    /// Exchanges the callback parameters for the user. `callback` is the JSON object of the
    /// query or form fields the provider sent; `session` is what [`Self::authorization_uri`] returned.
    ///
    /// The network calls run on the plugin's own runtime; this future only waits for them.
    pub async fn user_info(
        &self,
        callback: &serde_json::Value,
        session: &serde_json::Value,
    ) -> Result<SocialUserInfo, ConnectorError> {
        let future = self
            .inner
            .user_info(callback.to_string().into(), session.to_string().into());
        result(settle(future).await?)
    }

    /// Like [`Self::user_info`], and also returns the provider's tokens, for hosts that store them.
    /// `not_implemented` when the connector does not support it.
    pub async fn token_response_and_user_info(
        &self,
        callback: &serde_json::Value,
        session: &serde_json::Value,
    ) -> Result<(TokenResponse, SocialUserInfo), ConnectorError> {
        let future = self
            .inner
            .token_response_and_user_info(callback.to_string().into(), session.to_string().into());
        let Tuple2(token, user) = settle(future).await?.into_result()?;
        Ok((token.into(), user.into()))
    }

    /// A new access token from a refresh token; `not_implemented` when unsupported.
    pub async fn access_token_by_refresh_token(
        &self,
        refresh_token: &str,
    ) -> Result<TokenResponse, ConnectorError> {
        result(
            settle(
                self.inner
                    .access_token_by_refresh_token(refresh_token.into()),
            )
            .await?,
        )
    }
}

/// Awaits a plugin future. The plugin glue never lets a poll panic, but a plugin not built with
/// it could: that becomes `general` instead of unwinding through the host.
async fn settle<T>(future: FfiFuture<T>) -> Result<T, ConnectorError> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|_| ConnectorError::general("connector future panicked"))
}

fn result<F, T: From<F>>(r: RResult<F, FfiError>) -> Result<T, ConnectorError> {
    r.into_result().map(T::from).map_err(ConnectorError::from)
}
