//! The `tsstore` server crate: configuration, API keys, the command line
//! and the HTTP server. The binary (`src/main.rs`) is a thin wrapper over
//! `cli::run`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod registry;
pub mod serve;
