//! Reading a request body: at most a size limit, and within a time limit.
//!
//! A body whose declared length (`Content-Length`) is over the limit is refused at once,
//! before anything is read, and a body that does not arrive in full within
//! [`BODY_READ_TIMEOUT`] is answered `408 request_timeout`. Without these, a client that
//! declared a large body, or stalled half-way, held its connection until the request timeout,
//! and was then told `503 unavailable` (retry), as if the server had failed.

use crate::error::ApiError;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::StatusCode;
use std::future::Future;
use std::time::Duration;

/// How long a request's body may take to arrive in full once its headers are read.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The limit of an admin request's JSON body: axum's default for its `Json` extractor, which
/// the admin routes read through (see [`super::extract::ApiJson`]).
pub const ADMIN_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// `413 payload_too_large` when `body` declares more than `limit` bytes.
pub fn refuse_declared_over(body: &Body, limit: usize) -> Result<(), ApiError> {
    let declared = body.size_hint().lower();
    if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(ApiError::payload_too_large(limit));
    }
    Ok(())
}

/// Runs `read` (which reads a body) within [`BODY_READ_TIMEOUT`].
pub async fn within_timeout<T>(read: impl Future<Output = T>) -> Result<T, ApiError> {
    within(BODY_READ_TIMEOUT, read).await
}

/// The body, at most `limit` bytes: refused at once if it declares more, `408` if it does not
/// arrive within [`BODY_READ_TIMEOUT`].
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    read_limited_within(BODY_READ_TIMEOUT, body, limit).await
}

async fn read_limited_within(
    timeout: Duration,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    refuse_declared_over(&body, limit)?;
    within(timeout, axum::body::to_bytes(body, limit))
        .await?
        .map_err(|error| {
            if error.into_inner().is::<http_body_util::LengthLimitError>() {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::invalid_request("the body could not be read")
            }
        })
}

async fn within<T>(timeout: Duration, read: impl Future<Output = T>) -> Result<T, ApiError> {
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive in full within {} s",
                timeout.as_secs_f64()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream::{self, StreamExt};
    use http_body::{Frame, SizeHint};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body that declares `0` bytes and never sends any, as a client that sent a
    /// `Content-Length` and stopped.
    struct Declared(u64);

    impl HttpBody for Declared {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Pending
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.0)
        }
    }

    const WAIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let error =
            read_limited_within(Duration::from_secs(60), Body::new(Declared(70_000)), 65_536)
                .await
                .unwrap_err();
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_a_408_not_a_wait() {
        let error = read_limited_within(WAIT, Body::new(Declared(100)), 65_536)
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::REQUEST_TIMEOUT);
        let half = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"a\""))])
            .chain(stream::pending());
        let error = read_limited_within(WAIT, Body::from_stream(half), 65_536)
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_and_one_over_it_refused() {
        let body = read_limited_within(WAIT, Body::from(vec![1u8; 65_536]), 65_536).await;
        assert_eq!(body.unwrap().len(), 65_536);
        // No declared length (a chunked body): refused once more than the limit arrived.
        let chunk = || Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 40_000]));
        let chunks = stream::iter([chunk(), chunk()]);
        let error = read_limited_within(WAIT, Body::from_stream(chunks), 65_536)
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
