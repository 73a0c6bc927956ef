//! # connector-api
//!
//! A stable-ABI social connector interface modelled on Logto's connector kit, and the host-side
//! loader that discovers connector plugins (`cdylib`s) in a directory.
//!
//! - Hosts: [`discover_with`] a directory (with a [`ProbeCommand`], so that a library that
//!   crashes while loading is caught in a child process), then [`Plugin::create`] a [`Connector`] per config and call
//!   [`Connector::authorization_uri`] and [`Connector::user_info`].
//! - Plugins (feature `plugin`): implement [`plugin::Connector`] and call [`export_connector!`].
//!
//! Both sides speak the ordinary types of this crate ([`Metadata`], [`SocialUserInfo`],
//! [`ConnectorError`], …). The ABI itself ([`abi`]) is the only place that names abi_stable types,
//! so replacing abi_stable changes this crate alone.
//!
//! ## Compatibility policy
//!
//! The interface version is this crate's version ([`API_VERSION`]), recorded in every plugin by
//! abi_stable at build time and checked at load, together with the layout of every type that
//! crosses the boundary.
//!
//! - **Patch** (`0.1.x`): no change to any type in [`abi`]. Plugins and hosts mix freely.
//! - **Minor** (`0.x.0`, while below 1.0): anything in [`abi`] changed. A host refuses plugins built
//!   against an older minor, naming both versions. A host still loads a plugin built against a
//!   *newer* minor when the only changes are fields or methods added after the
//!   `last_prefix_field` marker; that is the only kind of change a minor bump may make without
//!   also bumping the major after 1.0.
//! - The layout check catches what the version number misses (a changed field type, say) and
//!   refuses the plugin with a "layout mismatch".
//!
//! Because a new host refuses plugins older than itself, **rebuild plugins before the host**
//! when the interface changes. Loaded libraries are never unloaded (abi_stable does not support
//! it); to take a new build while running, load a copy at a new path (see [`Plugin::load`]).
//!
//! ## Threads and panics
//!
//! A plugin runs its network calls on its own tokio runtime (each library has its own copy of
//! tokio); the host awaits an `FfiFuture` that is safe to poll from any executor. Every entry
//! point catches panics and reports them as `general`; [`Plugin::shutdown`] stops the plugin's
//! threads.

pub mod abi;
mod connector;
mod elf;
mod error;
mod loader;
mod permissions;
#[cfg(feature = "plugin")]
pub mod plugin;
#[cfg(unix)]
pub mod probe;
mod types;

pub use abi_stable;
pub use connector::Connector;
pub use error::{ConnectorError, ErrorCode};
pub use loader::{
    DiscoverError, DiscoverOptions, Discovery, PLUGIN_SUFFIX, Plugin, RejectReason, Rejected,
    check_dir, check_file, discover, discover_with,
};
pub use permissions::{Insecure, check_trusted};
#[cfg(unix)]
pub use probe::ProbeCommand;
pub use types::{
    Authorization, AuthorizationRequest, FormItem, FormItemType, I18nText, Metadata, Platform,
    SelectItem, SocialUserInfo, TokenResponse,
};

/// The interface version hosts and plugins are built against (this crate's version).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
