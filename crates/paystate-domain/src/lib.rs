//! Pure domain of paystate (placeholder; see docs/architecture.md).
