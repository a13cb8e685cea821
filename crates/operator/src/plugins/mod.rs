//! The plugins controllers render with ([`PluginStore`]) and the routes that
//! keep it current and wake the controllers ([`sources`]).

pub mod sources;
pub mod store;

pub use store::{PluginStore, Update};
