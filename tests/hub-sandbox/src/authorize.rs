//! `GET /oauth/authorize`: validates the request, then auto-approves (or denies) the user.

use std::sync::atomic::Ordering;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::config::SandboxClient;
use crate::params::Params;
use crate::server::{AppState, Shared, lock};
use crate::store::CodeParams;

/// A request whose client and redirect URI were validated: errors from here on are redirected.
struct Validated<'a> {
    client_id: &'a str,
    redirect_uri: &'a str,
    target: Url,
    state: Option<&'a str>,
}

pub(crate) async fn authorize(State(shared): AppState, RawQuery(query): RawQuery) -> Response {
    let params = match Params::parse(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(_) => return error_page("A parameter was repeated."),
    };
    match validate(&shared, &params) {
        Ok(request) => decide(&shared, &params, request),
        Err(message) => error_page(message),
    }
}

/// Checks what must hold before redirecting anywhere; `Err` is shown as a page.
fn validate<'a>(shared: &Shared, params: &'a Params) -> Result<Validated<'a>, &'static str> {
    let client_id = params.get("client_id").ok_or("Missing client_id.")?;
    let client = shared.client(client_id).ok_or("Unknown client_id.")?;
    let redirect_uri = params.get("redirect_uri").ok_or("Missing redirect_uri.")?;
    let target = Url::parse(redirect_uri).map_err(|_| "Invalid redirect_uri.")?;
    if target.fragment().is_some() || !redirect_allowed(client, &target) {
        return Err("This redirect_uri is not registered for this OAuth app.");
    }
    if params.get("response_type") != Some("code") {
        return Err("Unsupported response_type: only \"code\" is supported.");
    }
    let state = params.get("state");
    Ok(Validated {
        client_id,
        redirect_uri,
        target,
        state,
    })
}

/// Redirects back with a code, or with an OAuth error.
fn decide(shared: &Shared, params: &Params, request: Validated<'_>) -> Response {
    let challenge = params.get("code_challenge");
    if challenge.is_some() && params.get("code_challenge_method") != Some("S256") {
        let description = "code_challenge_method must be S256";
        return redirect_error(request, "invalid_request", description);
    }
    if shared.deny.load(Ordering::SeqCst) {
        return redirect_error(request, "access_denied", "The user denied the request");
    }
    let code = issue_code(
        shared,
        CodeParams {
            client_id: request.client_id.to_owned(),
            redirect_uri: request.redirect_uri.to_owned(),
            scope: normalize_scope(params.get("scope").unwrap_or_default()),
            code_challenge: challenge.map(str::to_owned),
            nonce: params.get("nonce").map(str::to_owned),
        },
    );
    redirect(request.target, &[("code", &code)], request.state)
}

/// Mints a code for the current user.
pub(crate) fn issue_code(shared: &Shared, params: CodeParams) -> String {
    let user = crate::load::numbered(shared, lock(&shared.user).clone());
    lock(&shared.store).issue_code(params, user, shared.code_ttl)
}

fn normalize_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn redirect_error(request: Validated<'_>, error: &str, description: &str) -> Response {
    let pairs = [("error", error), ("error_description", description)];
    redirect(request.target, &pairs, request.state)
}

/// `303 See Other` to `target` with `pairs` (and `state`) appended to its query.
fn redirect(mut target: Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    {
        let mut query = target.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, target.to_string())],
    )
        .into_response()
}

fn error_page(message: &'static str) -> Response {
    let html = format!(
        "<!doctype html>\n<html><head><title>400 - Invalid OAuth request</title></head>\
         <body><h1>Invalid OAuth request</h1><p>{message}</p></body></html>\n"
    );
    let content_type = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
    (StatusCode::BAD_REQUEST, content_type, html).into_response()
}

/// Exact match with a registered URI, except that `http` loopback URIs may use any port
/// (RFC 8252 §7.3). A client without registered URIs accepts any.
fn redirect_allowed(client: &SandboxClient, target: &Url) -> bool {
    client.redirect_uris.is_empty()
        || client.redirect_uris.iter().any(|registered| {
            Url::parse(registered).is_ok_and(|registered| same_redirect(registered, target))
        })
}

fn same_redirect(mut registered: Url, target: &Url) -> bool {
    if registered == *target {
        return true;
    }
    is_loopback_http(&registered)
        && is_loopback_http(target)
        && registered.set_port(target.port()).is_ok()
        && registered == *target
}

fn is_loopback_http(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(registered: &str, requested: &str) -> bool {
        let client = SandboxClient {
            redirect_uris: vec![registered.to_owned()],
            ..SandboxClient::default()
        };
        Url::parse(requested).is_ok_and(|url| redirect_allowed(&client, &url))
    }

    #[test]
    fn redirect_uris_match_exactly_except_loopback_ports() {
        assert!(allowed("https://app.example/cb", "https://app.example/cb"));
        assert!(!allowed(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(!allowed(
            "https://app.example/cb",
            "https://app.example/cb2"
        ));
        assert!(allowed(
            "http://localhost:3000/cb",
            "http://localhost:5173/cb"
        ));
        assert!(allowed("http://[::1]/cb", "http://[::1]:5173/cb"));
        assert!(!allowed(
            "http://localhost:3000/cb",
            "http://127.0.0.1:3000/cb"
        ));
        assert!(!allowed(
            "http://localhost:3000/cb",
            "http://localhost:3000/other"
        ));
    }
}
