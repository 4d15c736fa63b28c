//! One module per `paystate` subcommand.
//!
//! `serve` runs the server. The inspection commands (`replay`, `audit`, `verify`, `export`,
//! `import`) open the data directory themselves ([`offline`]) and end with the exit codes of
//! [`outcome`]; `demo` runs the server and the simulator in one process.

pub mod audit;
pub mod demo;
pub mod export;
pub mod import;
mod log_line;
pub mod offline;
pub mod outcome;
pub mod output;
mod progress;
pub mod replay;
pub mod serve;
pub mod verify;
