//! `GET /avatars/{name}.svg`: a tiny generated avatar, so `picture` URLs resolve.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

pub(crate) async fn avatar(Path(file): Path<String>) -> Response {
    match file.strip_suffix(".svg") {
        Some(name) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg(name)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A coloured circle (hue derived from `name`) with `name`'s initial.
fn svg(name: &str) -> String {
    let hue = u32::from(Sha256::digest(name.as_bytes())[0]) * 360 / 256;
    let initial = name
        .chars()
        .find(char::is_ascii_alphanumeric)
        .map_or('?', |c| c.to_ascii_uppercase());
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" viewBox=\"0 0 64 64\">\
         <circle cx=\"32\" cy=\"32\" r=\"32\" fill=\"hsl({hue},55%,50%)\"/>\
         <text x=\"32\" y=\"42\" font-family=\"sans-serif\" font-size=\"28\" fill=\"#fff\" \
         text-anchor=\"middle\">{initial}</text></svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::svg;

    #[test]
    fn svg_has_a_circle_and_the_initial_for_any_name() {
        for i in 0..512 {
            let svg = svg(&format!("user-{i}"));
            assert!(
                svg.contains("<circle") && svg.contains(">U</text>"),
                "{svg}"
            );
        }
        assert!(
            svg("<&>").contains(">?</text>"),
            "non-alphanumeric names are not echoed"
        );
    }
}
