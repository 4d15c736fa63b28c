//! The paystate server (placeholder).
