//! The `tsstore` binary. Store and key administration, status and the
//! footprint calculator work on store directories directly; `serve` runs
//! the server.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tsstore_server::cli;

/// On musl, mimalloc: musl's allocator unmaps every large buffer on free
/// and takes one lock for all threads (docs/BENCHMARKS.md, "Static musl
/// builds").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(out) => {
            // A reader that stops early (`| head`) is not an error, and
            // must not become a panic.
            if !out.is_empty() {
                let _ = writeln!(std::io::stdout().lock(), "{out}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
