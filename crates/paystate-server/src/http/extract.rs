//! Extractors whose rejections are [`ApiError`]s, so that a bad path, query or body always gets
//! the JSON error shape instead of axum's plain-text default.
//!
//! Route handlers use these instead of `axum::extract::{Path, Query, Json}`.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts};

/// Like [`axum::extract::Path`], rejecting with `400 invalid_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Like [`axum::extract::Query`], rejecting with `400 invalid_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Like [`axum::Json`], rejecting with `400 invalid_request`, `413 payload_too_large` or
/// `415 unsupported_media_type`.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);
