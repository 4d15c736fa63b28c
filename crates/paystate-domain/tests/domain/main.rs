//! Tests of the domain through its public API: specifications that read like VIPPS.md and
//! SPEC.md, and property tests where order and input space matter.

mod architecture;
mod catalogue;
mod payment_properties;
mod payment_spec;
mod provider_properties;
mod provider_spec;
mod support;
