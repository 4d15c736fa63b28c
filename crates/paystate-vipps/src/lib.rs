//! Vipps MobilePay adapter (placeholder).
