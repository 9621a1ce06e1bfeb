//! The `tsstore` binary. Store and key administration, status and the
//! footprint calculator work on store directories directly; `serve` runs
//! the server.

use std::process::ExitCode;

use clap::Parser;
use tsstore_server::cli;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
