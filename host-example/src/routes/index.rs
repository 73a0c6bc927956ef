//! `GET /`: the sign-in page.

use axum::extract::State;
use maud::Markup;

use crate::broker::Broker;
use crate::pages;

/// A button per configured connector of the current generation.
pub async fn index(State(broker): State<Broker>) -> Markup {
    pages::index(&broker.current(), broker.inner.demo)
}
