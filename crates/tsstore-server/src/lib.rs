//! The `tsstore` server crate: configuration, API keys and the command
//! line. The binary (`src/main.rs`) is a thin wrapper over `cli::run`; the
//! HTTP server (`serve`) joins these modules with the server issue.

pub mod cli;
pub mod config;
pub mod keys;
