//! Knobs for load tests: provider calls failing at random (seeded), and a distinct user per
//! authorization, so that a test can tell every sign-in's result apart.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::config::SandboxUser;
use crate::faults::Route;
use crate::server::{Shared, lock};

/// Load-test state; everything off by default.
#[derive(Debug, Default)]
pub(crate) struct LoadKnobs {
    /// Failure probability and the seeded generator that draws it.
    random: Mutex<Option<(f64, StdRng)>>,
    /// Random failures answered so far.
    pub failures: AtomicUsize,
    /// Whether each authorization is for a new numbered user.
    pub unique_users: AtomicBool,
    /// Users numbered so far.
    users: AtomicUsize,
}

impl LoadKnobs {
    /// `rate` (clamped to 0..=1) of later token and userinfo requests fail; `0` turns it off.
    pub(crate) fn set_failure_rate(&self, rate: f64, seed: u64) {
        let rate = rate.clamp(0.0, 1.0);
        *lock(&self.random) = (rate > 0.0).then(|| (rate, StdRng::seed_from_u64(seed)));
    }
}

/// Whether this request to `route` is one of the random failures (counted when it is).
pub(crate) fn fails_at_random(shared: &Shared, route: Route) -> bool {
    if !matches!(route, Route::Token | Route::Userinfo) {
        return false;
    }
    let fails = match lock(&shared.load.random).as_mut() {
        Some((rate, rng)) => rng.random_bool(*rate),
        None => false,
    };
    if fails {
        shared.load.failures.fetch_add(1, Ordering::SeqCst);
    }
    fails
}

/// The answer of a random failure: a bare `500`.
pub(crate) fn random_failure() -> Response {
    let body = "hub-sandbox: random failure";
    (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
}

/// `user`, or with unique users on, a copy with a sequence number in `sub`, `name` and
/// `preferred_username` (`sub` keeps its 24 hex digits).
pub(crate) fn numbered(shared: &Shared, user: SandboxUser) -> SandboxUser {
    if !shared.load.unique_users.load(Ordering::SeqCst) {
        return user;
    }
    let n = shared.load.users.fetch_add(1, Ordering::SeqCst) + 1;
    SandboxUser {
        sub: format!("{n:024x}"),
        name: format!("{} {n}", user.name),
        preferred_username: format!("{}-{n}", user.preferred_username),
        ..user
    }
}
