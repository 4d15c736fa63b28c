//! One module per `paystate` subcommand.

pub mod serve;
