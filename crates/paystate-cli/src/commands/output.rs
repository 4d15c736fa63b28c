//! Writing a command's report to standard output without panicking when it is gone.
//!
//! `println!` panics when standard output fails: a reader that stopped early (`paystate
//! verify | head -1`), a full disk, `> /dev/full`. [`say!`](crate::say) returns the failure as
//! an error instead, so the command ends through its usual path (exit code 2, and the demo
//! still disables its provider).

use anyhow::Context;
use std::fmt;
use std::io::Write;

/// Writes one line to standard output.
pub fn line(text: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(text)
        .and_then(|()| out.write_all(b"\n"))
        .context("writing to standard output")
}

/// Writes `text` as it is to standard output.
pub fn text(text: &str) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to standard output")
}

/// `println!` returning `anyhow::Result<()>` (see [`line`]).
#[macro_export]
macro_rules! say {
    () => {
        $crate::commands::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::commands::output::line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_macro_forms_compile_and_write() {
        // Writes through `std::io::stdout()` go to the test process's own standard output
        // (the harness captures only `print!`): open, so both succeed. A failing standard
        // output is tested on the binary (`tests/cli/output.rs`).
        assert!(crate::say!("{} {}", "paystate", 1).is_ok());
        assert!(crate::say!().is_ok());
    }
}
