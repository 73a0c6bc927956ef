//! `GET /`: the sign-in page.

use axum::extract::State;

use crate::broker::Broker;
use crate::pages;

/// A button per configured connector of the current generation.
pub async fn index(State(broker): State<Broker>) -> pages::Page {
    pages::index(&broker.current(), broker.inner.demo)
}
