//! `GET /sign-in/{id}`: start a sign-in and send the browser to the provider.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use connector_api::AuthorizationRequest;

use crate::binding;
use crate::broker::Broker;
use crate::error::{Failure, HostError, Step, wants_json};
use crate::pending::{PendingSignIn, now_ms};

/// 303 to the connector's authorization URI, with the state kept server-side for the sign-in's
/// lifetime and bound to this browser by the `hx_signin` cookie.
pub async fn sign_in(
    State(broker): State<Broker>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let fail = |failure: Failure| {
        let json = wants_json(&headers);
        failure.respond(&id, Step::SignIn, json, broker.inner.demo)
    };
    // Before anything is kept: a client over its rate cannot grow the pending store.
    if let Err(wait) = broker.inner.sign_in_rate.check(peer.ip()) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return fail(Failure::from(HostError::SignInRateLimited).retry_after(secs));
    }
    // A flood from many addresses: memory stays bounded, at the cost of refusing sign-ins.
    if broker.pending_store_is_full() {
        return fail(Failure::from(HostError::TooManyPending).retry_after(60));
    }
    let generation = broker.current();
    let Some(instance) = generation.instance(&id) else {
        return fail(HostError::UnknownConnector.into());
    };
    let state = binding::random_token();
    // Reuse the browser's binding so that sign-ins in two tabs do not invalidate each other,
    // but only a value this broker issued: a planted one is replaced.
    let https = broker.config().is_https();
    let key = broker.binding_key();
    let cookie = binding::verified(&headers, binding::cookie_name(https), &key)
        .unwrap_or_else(|| key.issue());
    let request = AuthorizationRequest {
        state: state.clone(),
        redirect_uri: broker.config().redirect_uri(&id),
        connector_id: id.clone(),
        jti: binding::random_token(),
        user_agent: user_agent(&headers),
        scope: None,
    };
    let authorization = match instance.connector.authorization_uri(request) {
        Ok(a) => a,
        Err(e) => return fail(Failure::in_plugin(&e, &instance.library.source)),
    };
    let ttl = broker.inner.sign_in_ttl;
    let pending = PendingSignIn {
        connector: id.clone(),
        generation: generation.number,
        factory: instance.metadata.id.clone(),
        build: instance.library.sha256.clone(),
        origin: broker.inner.origin.clone(),
        session: authorization.session,
        expires_at_ms: now_ms().saturating_add(ttl.as_millis() as u64),
        binding: binding::hash(&cookie),
    };
    if let Err(e) = broker
        .inner
        .pending
        .put(&binding::state_key(&state), pending)
        .await
    {
        tracing::error!(error = ?e.to_string(), "cannot store a pending sign-in");
        return fail(HostError::StoreUnavailable.into());
    }
    generation.sign_in_started();
    let set_cookie = binding::set_cookie(&cookie, ttl.as_secs(), https);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, authorization.uri),
            (header::SET_COOKIE, set_cookie),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response()
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
