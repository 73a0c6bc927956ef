//! `GET|POST /callback/{id}`: the provider sends the browser back; finish the sign-in.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use connector_api::SocialUserInfo;
use serde_json::{Map, Value, json};

use crate::binding::{self, Presented};
use crate::broker::Broker;
use crate::error::{Failure, HostError, Step, wants_json};
use crate::pages;
use crate::pending::{PendingSignIn, Taken, now_ms};
use crate::registry::{Generation, Instance};

/// Providers that answer with a query string (most, Hugging Face included).
pub async fn callback_get(
    State(broker): State<Broker>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = form_params(query.as_deref().unwrap_or_default().as_bytes());
    finish(&broker, &id, params, &headers).await
}

/// Providers with `response_mode=form_post`, which send the parameters as a form body.
pub async fn callback_post(
    State(broker): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    finish(&broker, &id, form_params(&body), &headers).await
}

async fn finish(
    broker: &Broker,
    id: &str,
    params: Result<Map<String, Value>, HostError>,
    headers: &HeaderMap,
) -> Response {
    let json = wants_json(headers);
    let demo = broker.inner.demo;
    let (instance, mut user) = match complete(broker, id, params, headers).await {
        Ok(done) => done,
        Err(failure) => return failure.respond(id, Step::Callback, json, demo),
    };
    tracing::info!(connector = id, user = ?user.id, "sign-in complete");
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    match json {
        // The profile only: SocialUserInfo has no tokens, and the broker never sends them.
        true => {
            // As on the page: a `javascript:` (or any non-http) avatar is not passed on.
            user.avatar = user.avatar.filter(|a| pages::is_http_url(a));
            (no_store, Json(json!({"connector": id, "user": user}))).into_response()
        }
        false => (no_store, pages::profile(&instance, &user, demo)).into_response(),
    }
}

/// Checks the state (exists, unexpired, this connector's, this browser's, unused), then asks the
/// generation that started the sign-in for the user.
async fn complete(
    broker: &Broker,
    id: &str,
    params: Result<Map<String, Value>, HostError>,
    headers: &HeaderMap,
) -> Result<(Arc<Instance>, SocialUserInfo), Failure> {
    let params = params?;
    let state = params.get("state").and_then(Value::as_str);
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(HostError::InvalidState)?;
    // Checked before taking the state, so that a cookie-less request, or one carrying a planted
    // cookie, cannot burn a sign-in.
    let cookie = browser_binding(broker, headers)?;
    let taken = broker.inner.pending.take(&binding::state_key(state)).await;
    let pending = match taken.map_err(|e| {
        tracing::error!(error = ?e.to_string(), "cannot read a pending sign-in");
        HostError::StoreUnavailable
    })? {
        Taken::Found(pending) => pending,
        Taken::Used => return Err(HostError::StateReplayed.into()),
        Taken::Missing => return Err(HostError::InvalidState.into()),
    };
    // Only the process that started the sign-in counted it against its generation.
    let started_here = pending.origin == broker.inner.origin;
    let generation = match started_here {
        true => broker.inner.registry.generation(pending.generation),
        false => None,
    };
    if let Some(generation) = &generation {
        generation.sign_in_ended();
    }
    if pending.expires_at_ms <= now_ms() {
        return Err(HostError::StateExpired.into());
    }
    if pending.connector != id {
        return Err(HostError::InvalidState.into());
    }
    if pending.binding != binding::hash(&cookie) {
        return Err(HostError::CookieMismatch.into());
    }
    let generation = match started_here {
        // Gone only if retired past the sign-in lifetime, i.e. expired.
        true => generation.ok_or(HostError::StateExpired)?,
        false => started_elsewhere(broker, id, &pending).ok_or_else(|| {
            tracing::warn!(
                connector = id,
                factory = ?pending.factory,
                "a sign-in started on another instance has no matching connector here \
                 (are all instances configured alike?)"
            );
            HostError::InvalidState
        })?,
    };
    let instance = generation
        .instance(id)
        .cloned()
        .ok_or(HostError::InvalidState)?;
    if !pending.factory.is_empty() && instance.metadata.id != pending.factory {
        return Err(HostError::InvalidState.into());
    }
    let user = instance
        .connector
        .user_info(&Value::Object(params), &pending.session)
        .await
        .map_err(|e| Failure::in_plugin(&e, &instance.library.source))?;
    // Held until here on purpose: a generation in use is never retired under a running call.
    drop(generation);
    Ok((instance, user))
}

/// The one binding value this broker issued that the browser presents.
fn browser_binding(broker: &Broker, headers: &HeaderMap) -> Result<String, HostError> {
    let name = binding::cookie_name(broker.config().is_https());
    match binding::presented(headers, name) {
        Presented::One(value) if broker.binding_key().verify(&value) => Ok(value),
        Presented::One(_) | Presented::Nothing => Err(HostError::CookieMissing),
        Presented::Conflict(count) => {
            tracing::warn!(
                count,
                "a callback presents several sign-in cookies (one may have been planted)"
            );
            Err(HostError::CookieConflict)
        }
    }
}

/// The generation that finishes a sign-in another broker instance started (a shared store).
///
/// Generation numbers are per process, so the pending sign-in's `generation` means nothing
/// here. What is stable across instances is the plugin build (`build`, the SHA-256 of the
/// plugin file) and the factory id. So: a live generation (the current one first) whose instance `id` runs the
/// same build — the session was made by that exact code, so it is understood; else the current
/// generation, if its instance `id` comes from the same factory — during a rolling upgrade the
/// instances briefly run different builds of one plugin, and a plugin keeps its session format
/// readable by its next build (the rule reloads already rely on); else none (the connector id
/// is missing here or made by another factory: the sign-in is refused, never finished by a
/// different connector). Instances behind one load balancer must share one config.
fn started_elsewhere(
    broker: &Broker,
    id: &str,
    pending: &PendingSignIn,
) -> Option<Arc<Generation>> {
    let registry = &broker.inner.registry;
    let same_factory = |g: &Generation| {
        g.instance(id)
            .is_some_and(|i| pending.factory.is_empty() || i.metadata.id == pending.factory)
    };
    let same_build = registry
        .live_generations()
        .into_iter()
        .filter_map(|number| registry.generation(number))
        .find(|g| {
            same_factory(g)
                && g.instance(id)
                    .is_some_and(|i| i.library.sha256 == pending.build)
        });
    same_build.or_else(|| Some(broker.current()).filter(|g| same_factory(g)))
}

/// `application/x-www-form-urlencoded` (a query string or a form body) as a JSON object of
/// strings. A repeated parameter is refused rather than guessed at.
fn form_params(bytes: &[u8]) -> Result<Map<String, Value>, HostError> {
    let mut params = Map::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        if params
            .insert(key.into_owned(), Value::String(value.into_owned()))
            .is_some()
        {
            return Err(HostError::InvalidRequest);
        }
    }
    Ok(params)
}
