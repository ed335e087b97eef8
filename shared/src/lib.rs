//! What every DM function shares: configuration, the error type and its HTTP mapping, authentication,
//! request parsing, the model, and the single-table store.

pub mod access;
pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod input;
pub mod lambda;
#[cfg(feature = "media")]
pub mod media;
pub mod metrics;
pub mod model;
pub mod notifications;
pub mod paging;
pub mod posting;
pub mod push;
pub mod state;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod views;

pub use error::{Error, Result};
pub use state::AppState;
