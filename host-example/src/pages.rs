//! The broker's HTML pages. maud escapes every interpolated value; URLs placed in `src` or
//! `href` are also checked to be http(s) or image data URIs, so a provider cannot inject a
//! `javascript:` link.
//!
//! Each page is answered with its own Content-Security-Policy: nothing may load but the page's
//! stylesheet (by its hash: no inline style or script runs otherwise) and images from `data:`
//! and the origins of the images the page shows (connector logos, the user's avatar).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use connector_api::SocialUserInfo;
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};

use crate::error::Failure;
use crate::registry::{Generation, Instance};

/// The banner every demo page carries.
pub const DEMO_BANNER: &str = "Demo: signing in against the local Hub sandbox, not huggingface.co";

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f6f7f9;color:#1f2328;margin:0}
main{max-width:28rem;margin:4rem auto;background:#fff;border:1px solid #d8dee4;border-radius:12px;padding:2rem}
h1{font-size:1.4rem;margin:0 0 1.5rem}
.demo{background:#fff4ce;border-bottom:1px solid #e3c567;padding:.6rem 1rem;text-align:center;font-weight:600}
a.signin{display:flex;align-items:center;gap:.75rem;padding:.7rem 1rem;margin:.6rem 0;border:1px solid #d0d7de;border-radius:8px;color:inherit;text-decoration:none;font-weight:600}
a.signin:hover{background:#f3f4f6}
a.signin img{width:28px;height:28px}
a.signin small{margin-left:auto;color:#6e7781;font-weight:400}
.profile{display:flex;gap:1rem;align-items:center;margin-bottom:1rem}
.profile img{width:64px;height:64px;border-radius:50%}
dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem;margin:0}
dt{color:#6e7781}dd{margin:0;word-break:break-all}
.error h1{color:#b42318}.code{font-family:monospace;color:#6e7781}
";

/// `'sha256-…'` of [`STYLE`]: the only style the policy allows.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
});

/// A rendered page and the image origins it shows, answered as HTML with its policy.
pub struct Page {
    markup: Markup,
    image_origins: Vec<String>,
}

impl Page {
    fn new<'a>(markup: Markup, images: impl IntoIterator<Item = &'a str>) -> Self {
        let mut image_origins: Vec<String> = images.into_iter().filter_map(http_origin).collect();
        image_origins.sort();
        image_origins.dedup();
        Self {
            markup,
            image_origins,
        }
    }

    /// The page's Content-Security-Policy.
    pub fn content_security_policy(&self) -> String {
        let mut images = vec!["data:".to_string()];
        images.extend(self.image_origins.iter().cloned());
        format!(
            "default-src 'none'; img-src {}; style-src {}; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'none'",
            images.join(" "),
            *STYLE_HASH
        )
    }

    /// The HTML.
    pub fn into_markup(self) -> Markup {
        self.markup
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let policy = self.content_security_policy();
        ([(header::CONTENT_SECURITY_POLICY, policy)], self.markup).into_response()
    }
}

/// `scheme://host[:port]` of an http(s) URL, as a CSP source (which a URL's origin cannot
/// break out of: hosts hold no spaces, quotes or `;`).
fn http_origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// Whether `url` is an absolute http(s) URL (what the JSON API passes on as an avatar).
pub fn is_http_url(url: &str) -> bool {
    http_origin(url).is_some()
}

fn layout(title: &str, demo: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · host-example" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                @if demo { div.demo role="note" { (DEMO_BANNER) } }
                main { (body) }
            }
        }
    }
}

/// `GET /`: a sign-in button per configured connector.
pub fn index(generation: &Generation, demo: bool) -> Page {
    let logos = generation
        .instances
        .iter()
        .map(|i| i.metadata.logo.as_str());
    let markup = layout(
        "Sign in",
        demo,
        html! {
            h1 { "Sign in" }
            @if generation.instances.is_empty() { p { "No connectors are configured." } }
            @for instance in &generation.instances { (sign_in_button(instance)) }
        },
    );
    Page::new(markup, logos)
}

fn sign_in_button(instance: &Instance) -> Markup {
    let name = instance.metadata.english_name();
    html! {
        a.signin href={ "/sign-in/" (instance.id) } data-connector=(instance.id) {
            @if let Some(logo) = safe_image_url(&instance.metadata.logo) {
                img src=(logo) alt="";
            }
            span { "Sign in with " (name) }
            small { (instance.id) }
        }
    }
}

/// The page after a successful sign-in. It shows the profile only: the provider's tokens never
/// reach the browser.
pub fn profile(instance: &Instance, user: &SocialUserInfo, demo: bool) -> Page {
    let name = user.name.as_deref().unwrap_or(&user.id);
    let avatar = user.avatar.as_deref().and_then(safe_image_url);
    let markup = layout(
        "Signed in",
        demo,
        html! {
            h1 { "Signed in with " (instance.metadata.english_name()) }
            div.profile {
                @if let Some(avatar) = avatar {
                    img.avatar src=(avatar) alt={ "Avatar of " (name) };
                }
                strong.name { (name) }
            }
            dl {
                dt { "Name" } dd { (user.name.as_deref().unwrap_or("—")) }
                dt { "Email" } dd { (user.email.as_deref().unwrap_or("—")) }
                dt { "User id" } dd { (user.id) }
                dt { "Connector" } dd { (instance.id) }
            }
            p { a href="/" { "Back to sign-in" } }
        },
    );
    Page::new(markup, avatar)
}

/// A failed sign-in.
pub fn error(failure: &Failure, demo: bool) -> Page {
    let markup = layout(
        "Sign-in failed",
        demo,
        html! {
            div.error {
                h1 { "Sign-in failed" }
                p { (failure.message) }
                p.code { (failure.status.as_u16()) " · " (failure.code) }
                p { a href="/" { "Start again" } }
            }
        },
    );
    Page::new(markup, None)
}

/// `url` if a browser may load it as an image without running script.
fn safe_image_url(url: &str) -> Option<&str> {
    let lower = url.trim_start().to_ascii_lowercase();
    [
        "https://",
        "http://",
        "data:image/png",
        "data:image/svg+xml",
        "data:image/jpeg",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
    .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_image_data_urls_are_rendered() {
        assert!(safe_image_url("https://hf.co/a.png").is_some());
        assert!(safe_image_url("data:image/svg+xml;base64,AAA").is_some());
        assert!(safe_image_url("javascript:alert(1)").is_none());
        assert!(safe_image_url("data:text/html,<script>").is_none());
    }

    #[test]
    fn image_origins_are_http_origins_only() {
        assert_eq!(
            http_origin("https://cdn.example:8443/a/b.png?x=1").as_deref(),
            Some("https://cdn.example:8443")
        );
        assert_eq!(http_origin("data:image/png;base64,AAA"), None);
        assert_eq!(http_origin("javascript:alert(1)"), None);
        let page = Page::new(
            html! {},
            [
                "http://a.example/x",
                "data:image/png,",
                "http://a.example/y",
            ],
        );
        let policy = page.content_security_policy();
        assert!(
            policy.contains("img-src data: http://a.example;"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
}
