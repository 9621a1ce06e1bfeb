//! Gzips the files the server embeds (the console's assets and the
//! OpenAPI document), and links the server binary with the code it runs
//! while starting laid out together, and stripped.
//!
//! Why gzip: the embedded files are 320 kB as text and 50 kB gzipped, on
//! a binary whose users count flash megabytes; browsers take them gzipped
//! as they are (`http::embedded`), so the console also loads faster over
//! a slow link.
//!
//! Why: the kernel maps an executable's pages 64 KiB at a time around each
//! page fault (fault-around), so the functions that run from start to idle,
//! scattered over 6 MB of code, made 3.6 MB of it resident in an idle
//! server. `link/startup-order.txt` names them (`scripts/startup-order.sh`
//! makes it) and the linker (LLD, Rust's default on x86_64 Linux) puts them
//! first, so they share a few dozen pages. A name the list holds that no
//! longer exists is skipped: a stale list loses some of the gain, nothing
//! else.
//!
//! Symbols are stripped here rather than by the profile's `strip`: every
//! profile setting is part of every crate's symbol names (their hash), and
//! the list is made from a build with symbols, which must have the same
//! names. `TSSTORE_KEEP_SYMBOLS=1` keeps them.

use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The embedded files, from the crate's directory; each becomes
/// `$OUT_DIR/<file name>.gz`.
const EMBEDDED: [&str; 6] = [
    "src/http/console/index.html",
    "src/http/console/app.js",
    "src/http/console/app.css",
    "src/http/console/vendor/uPlot.iife.min.js",
    "src/http/console/vendor/uPlot.min.css",
    "../../docs/openapi.json",
];

fn main() {
    gzip_embedded();
    link();
}

/// Writes each of `EMBEDDED` gzipped (best compression; the header's time
/// is 0, so the bytes depend on the file alone) into `OUT_DIR`.
fn gzip_embedded() {
    let (Some(dir), Some(out)) = (env::var_os("CARGO_MANIFEST_DIR"), env::var_os("OUT_DIR")) else {
        panic!("cargo sets CARGO_MANIFEST_DIR and OUT_DIR for build scripts");
    };
    for file in EMBEDDED {
        let path = PathBuf::from(&dir).join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let target = Path::new(&out).join(format!("{name}.gz"));
        let written = gz
            .write_all(&text)
            .and_then(|()| gz.finish())
            .and_then(|bytes| std::fs::write(&target, bytes));
        if let Err(e) = written {
            panic!("cannot write {}: {e}", target.display());
        }
    }
}

/// The release link's arguments (see the top of this file).
fn link() {
    println!("cargo:rerun-if-changed=link/startup-order.txt");
    println!("cargo:rerun-if-env-changed=TSSTORE_KEEP_SYMBOLS");
    // Linux linkers (through `cc`) only; elsewhere the binary keeps its
    // symbols.
    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if env::var("PROFILE").as_deref() != Ok("release") || !linux {
        return;
    }
    if env::var_os("TSSTORE_KEEP_SYMBOLS").is_none() {
        println!("cargo:rustc-link-arg-bin=tsstore=-Wl,--strip-all");
    }
    // The list's names are x86_64 glibc builds'; a linker chosen by the
    // user (`linker`, `-C link-arg`…) may not take the option.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let default_linker =
        env::var_os("RUSTC_LINKER").is_none() && !flags.contains("link") && rustc_links_with_lld();
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let list = Path::new(&dir).join("link/startup-order.txt");
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && default_linker
        && list.is_file()
    {
        println!(
            "cargo:rustc-link-arg-bin=tsstore=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=tsstore=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether this rustc links with its own LLD by default on x86_64 Linux
/// (1.90 on; before, the system's `ld`, which has no ordering option).
fn rustc_links_with_lld() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(release) = text.lines().find_map(|l| l.strip_prefix("release: ")) else {
        return false;
    };
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 90)
}
