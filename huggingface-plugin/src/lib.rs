//! Sign in with Hugging Face: a connector plugin for `connector-api` hosts.
//!
//! At parity with Logto's `@logto/connector-huggingface` (same metadata id, config and mapping),
//! plus PKCE, OpenID Connect id_token verification, public clients, organization selection and
//! gating, `email_verified`, token storage and refresh, a timeout and a size limit on every
//! request, rate-limit reporting and a configurable Hub endpoint.
//! Built as a `cdylib` for hosts; the `rlib` is for in-process tests and benchmarks.

mod authorize;
mod callback;
mod config;
mod connector;
mod constants;
#[cfg(test)]
mod fuzz;
mod http;
mod json_error;
mod metadata;
mod oidc;
mod orgs;
mod pkce;
mod scrub;
mod secret;
mod session;
mod token;
mod userinfo;

pub use connector::HuggingFace;
pub use metadata::CONNECTOR_ID;

connector_api::export_connector!(HuggingFace);
