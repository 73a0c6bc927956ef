//! `host-example`: a small but real sample identity broker over connector plugins.
//!
//! It loads every plugin of a directory, builds the connector instances a TOML config file asks
//! for, and serves a web sign-in flow (`/`, `/sign-in/{id}`, `/callback/{id}`), a JSON API and a
//! loopback-only `POST /admin/reload` (also on `SIGHUP`) that takes new plugin builds without a
//! restart. `main.rs` only parses the command line; everything else is here, so that tests (and
//! broker authors) can run the broker in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use host_example::{Broker, BrokerConfig, BrokerOptions};
//! let config = BrokerConfig::load("broker.toml".as_ref())?;
//! let broker = Broker::start(config, BrokerOptions::new("/usr/lib/broker/plugins"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! broker.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod binding;
pub mod broker;
pub mod config;
pub mod demo;
pub mod error;
pub mod list;
pub mod logging;
pub mod pages;
pub mod pending;
pub mod registry;
pub mod reload;
pub mod routes;
pub mod serve;
pub mod sign_in_rate;

pub use broker::{Broker, BrokerOptions, ReloadError, ReloadReport, SIGN_IN_TTL, StartError};
pub use config::{BrokerConfig, ConfigError, ConnectorConfig, SecretUrl};
pub use pending::{MemoryStore, PendingSignIn, PendingStore, RedisStore, StoreError, Taken};
pub use serve::ServerLimits;
pub use sign_in_rate::SignInLimits;
