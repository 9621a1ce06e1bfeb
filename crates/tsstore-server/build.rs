//! Links the server binary with the code it runs while starting laid out
//! together, and stripped.
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
use std::path::Path;
use std::process::Command;

fn main() {
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
