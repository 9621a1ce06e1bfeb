//! Progress bars for the long commands (`export`, `import`), on stderr.
//!
//! A bar is drawn only when both stdout and stderr are terminals: output
//! piped into another program or a file (`tsstore export s > backup`) and
//! scripts get no escape codes, only the final summary.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether a bar would be seen by a person.
pub(super) fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A bar counting to `total` (bytes of a file, nanoseconds of a window),
/// or a hidden one when `show` is false.
pub(super) fn bar(show: bool, total: u64, bytes: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let template = if bytes {
        "{prefix:>9} [{bar:32}] {bytes}/{total_bytes}  {msg}  {elapsed}"
    } else {
        "{prefix:>9} [{bar:32}] {percent:>3}%  {msg}  {elapsed}"
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr())
        .with_style(style)
}
