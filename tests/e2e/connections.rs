//! Connection handling: a client that stalls in its headers is disconnected, a body declared
//! over the limit is refused before it is sent, and a graceful stop still answers a request
//! that was already being received.

use paystate_e2e::TestServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upper bound for the test to fail rather than hang; it measures nothing.
const GUARD: Duration = Duration::from_secs(60);

fn address(server: &TestServer) -> String {
    server.base_url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = TestServer::start_with(|config| {
        config.header_read_timeout = Duration::from_millis(200);
    })
    .await;
    let mut stream = TcpStream::connect(address(&server)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: paystate\r\nX-Slow: ")
        .await
        .expect("write part of the headers");

    // Without a header-read timeout this read waits for as long as the client stays silent.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(GUARD, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stalled connection was still open");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("200 OK"),
        "a request with unfinished headers was answered: {text}"
    );

    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// Sends `head` (a request line and headers, no body) and returns the status line of the
/// answer.
async fn status_line_for(server: &TestServer, head: String) -> String {
    let mut stream = TcpStream::connect(address(server)).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("the head");
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(GUARD, stream.read(&mut answer))
        .await
        .expect("an answer before the guard")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_body_declared_over_the_limit_is_refused_before_it_is_sent() {
    // The request timeout is far beyond the guard: waiting for the body would end in a 503
    // (or the guard), not in a 413.
    let fx = crate::ingestion::Fixture::start_with(|config| {
        config.request_timeout = Duration::from_secs(600);
    })
    .await;
    let server = &fx.server;
    let webhook = format!(
        "POST /webhooks/vipps/{} HTTP/1.1\r\nHost: paystate\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000000\r\n\r\n",
        fx.provider.id
    );
    assert_eq!(
        status_line_for(server, webhook).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    let admin = format!(
        "POST /providers HTTP/1.1\r\nHost: paystate\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n",
        server.admin_token
    );
    assert_eq!(
        status_line_for(server, admin).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    fx.server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_too() {
    let server = TestServer::start_with(|config| {
        config.header_read_timeout = Duration::from_millis(200);
    })
    .await;
    let mut stream = TcpStream::connect(address(&server)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: paystate\r\n\r\n")
        .await
        .expect("a complete request");
    let mut answer = vec![0; 4096];
    let read = stream.read(&mut answer).await.expect("the answer");
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The connection stays open for a next request, but not forever.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(GUARD, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle connection was still open");
    server.stop().await;
}

#[tokio::test]
async fn a_graceful_stop_answers_the_request_being_received_then_refuses_new_ones() {
    let server = TestServer::start().await;
    let address = address(&server);
    let body = br#"{"id":"late","kind":"vipps","environment":"test","msn":"123456","credentials":{"client_id":"c","client_secret":"s","subscription_key":"k"}}"#;
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /providers HTTP/1.1\r\nHost: paystate\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.admin_token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("headers");
    stream
        .write_all(&body[..4])
        .await
        .expect("part of the body");
    // The request is being handled (the handler is reading the body) when the stop begins.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);

    let base_url = server.base_url.clone();
    let stopping = tokio::spawn(server.stop());
    // Wait until the server no longer accepts connections: the stop has begun.
    tokio::time::timeout(GUARD, async {
        while TcpStream::connect(&address).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{base_url} kept accepting connections after the stop"));

    stream
        .write_all(&body[4..])
        .await
        .expect("rest of the body");
    let mut answer = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the in-flight request was answered")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains(r#""id":"late""#), "{answer}");
    tokio::time::timeout(GUARD, stopping)
        .await
        .expect("the server stopped")
        .expect("stop task");
}
