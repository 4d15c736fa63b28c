//! Vipps MobilePay simulator (placeholder).
