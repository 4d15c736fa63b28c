//! Extractors whose rejections are [`ApiError`]s, so that a bad path, query or body always gets
//! the JSON error shape instead of axum's plain-text default.
//!
//! Route handlers use these instead of `axum::extract::{Path, Query, Json}`.

use super::object::Shape;
use super::{body, query};
use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Like [`axum::extract::Path`], rejecting with `400 invalid_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Like [`axum::extract::Query`], rejecting with `400 invalid_request`, also when a parameter
/// `T` reads is not UTF-8 (see [`query`]).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(raw) = parts.uri.query() {
            query::refuse_values_not_utf8(raw, query::parameters::<T>())?;
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// A JSON object body read as `T`, like [`axum::Json`], rejecting with `400 invalid_request`,
/// `408 request_timeout` (see [`body`]), `413 payload_too_large` (at once when the declared
/// length is over [`body::ADMIN_BODY_LIMIT`]) or `415 unsupported_media_type`.
///
/// Every body of the admin API is a JSON object (SPEC §3.2): any other top-level value (an
/// array, which a derived struct would otherwise read field by field, a string, a number, a
/// boolean or `null`) is a `400 invalid_request` saying so.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        body::refuse_declared_over(request.body(), body::ADMIN_BODY_LIMIT)?;
        let read = axum::Json::<Shape<T>>::from_request(request, state);
        let axum::Json(shape) = body::within_timeout(read).await??;
        match shape {
            Shape::Object(body) => Ok(ApiJson(body)),
            Shape::Other(kind) => Err(ApiError::invalid_request(format!(
                "the body must be a JSON object, not {kind}"
            ))),
        }
    }
}
