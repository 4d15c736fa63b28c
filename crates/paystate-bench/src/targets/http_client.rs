//! One-off JSON requests for setting a target up (admin calls, health checks): a fresh
//! connection per call, which is fine outside the measured load.

use crate::error::BenchError;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Sends one request to `address` and returns the status and the JSON answer (`Null` when
/// the body is empty or not JSON).
pub async fn call(
    address: SocketAddr,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, serde_json::Value), BenchError> {
    let (status, bytes) = call_raw(address, method, path, bearer, body).await?;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// As [`call`], with the answer's bytes as they came.
pub async fn call_raw(
    address: SocketAddr,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, Bytes), BenchError> {
    let failed = |message: String| BenchError::Http {
        what: format!("{method} http://{address}{path}"),
        message,
    };
    let stream = TcpStream::connect(address)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| failed(error.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, address.to_string());
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let payload = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(payload))
        .map_err(|error| failed(error.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| failed(error.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}
