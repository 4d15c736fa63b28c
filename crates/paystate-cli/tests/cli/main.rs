//! The `paystate` binary, run as a user runs it, on data directories the tests build through
//! the store API, next to a real `paystate serve` (the lock), and through `paystate demo` (the
//! real server and simulator).
//!
//! One module per command; `support` builds data directories and runs the binary.

mod support;

mod audit;
mod demo;
mod export_import;
mod help;
mod import_staging;
mod locked;
mod output;
mod replay;
mod verify;

use paystate_projections::persist::PROJECTION_NAME;
use paystate_store::{EventStore, KvOp};
use support::{chain_head, rebuilt_projections, run, run_with_input, DataDir, LogBuilder, Tamper};

/// A data directory with the provider set up and two payments (see [`LogBuilder::story`]).
fn story_dir() -> DataDir {
    let data = DataDir::empty();
    let log = LogBuilder::new(&data);
    log.story();
    log.finish();
    data
}
