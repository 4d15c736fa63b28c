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
            eprintln!("error: {error:#}");
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}
