//! How the inspection commands end: their exit codes.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; a check found nothing wrong |
//! | 1 | a check found a problem (`verify`: a bad record or signature; `replay --verify`: a difference) |
//! | 2 | the command could not do its work: bad usage (clap's own code), unreadable input, a locked or missing data directory, an I/O error, a refused import |

use std::process::ExitCode;

/// What a command that ran to the end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing wrong.
    Clean,
    /// The command printed a problem it found (exit code 1).
    ProblemFound,
}

/// Exit code 1: a check found a problem.
pub const PROBLEM_FOUND: u8 = 1;
/// Exit code 2: the command could not do its work.
pub const COULD_NOT_RUN: u8 = 2;

/// Turns a command's result into its exit code, printing the error chain on failure.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::ProblemFound) => ExitCode::from(PROBLEM_FOUND),
        Err(error) => {
            eprintln!("error: {}", chain_text(&error));
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

/// An error and its causes in one line, `outer: inner: innermost`, each cause said once: an
/// error whose message already ends with its cause's text (`admin token file x: Not a
/// directory`) is not followed by that text again.
pub fn chain_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("admin token file x: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_ends_with_is_said_once() {
        let io = std::io::Error::other("Not a directory");
        let error = anyhow::Error::new(Repeats { source: io }).context("starting");
        assert_eq!(
            chain_text(&error),
            "starting: admin token file x: Not a directory"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain_text(&plain), "outer: inner");
    }
}
