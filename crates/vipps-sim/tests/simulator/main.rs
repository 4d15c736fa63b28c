//! The simulator over real HTTP on 127.0.0.1: the Vipps APIs, the operation rules, webhook
//! delivery verified the way paystate verifies it, and every fault knob.

mod api;
mod binary;
mod delivery;
mod faults;
mod operations;
mod support;
