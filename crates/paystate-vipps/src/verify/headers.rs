//! A case-insensitive, read-only view of a delivery's headers, and the request to verify.

use std::fmt;

/// Read access to request headers by name, case-insensitively.
///
/// Implemented for [`http::HeaderMap`] (what axum and hyper hand a server) and for slices of
/// `(name, value)` pairs (handy in tests and tools). `name` is passed in lower case.
pub trait HeaderLookup {
    /// The first value of header `name`, as raw bytes, if present.
    fn header(&self, name: &str) -> Option<&[u8]>;
}

impl HeaderLookup for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(http::HeaderValue::as_bytes)
    }
}

fn find_pair<'a, K: AsRef<str>, V: AsRef<[u8]>>(
    pairs: &'a [(K, V)],
    name: &str,
) -> Option<&'a [u8]> {
    pairs
        .iter()
        .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_ref())
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for &[(K, V)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        find_pair(self, name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> HeaderLookup for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        find_pair(self, name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        find_pair(self, name)
    }
}

/// A received delivery: its headers and its **raw** body bytes, exactly as they arrived.
///
/// The body must not be parsed and re-serialized before verification: Vipps hashes the bytes
/// it sent, and any re-encoding changes them.
#[derive(Clone, Copy)]
pub struct DeliveryRequest<'a> {
    pub(crate) headers: &'a dyn HeaderLookup,
    pub(crate) body: &'a [u8],
    pub(crate) request_target: Option<&'a str>,
    pub(crate) request_host: Option<&'a str>,
}

impl<'a> DeliveryRequest<'a> {
    /// A delivery with these headers and raw body.
    pub fn new(headers: &'a dyn HeaderLookup, body: &'a [u8]) -> Self {
        Self {
            headers,
            body,
            request_target: None,
            request_host: None,
        }
    }

    /// Adds the path and query the request arrived at (e.g. axum's `OriginalUri`), so a
    /// rejection can tell when a proxy rewrote the path. Verification itself never uses it:
    /// Vipps signs the registered URL's path.
    pub fn with_request_target(mut self, path_and_query: &'a str) -> Self {
        self.request_target = Some(path_and_query);
        self
    }

    /// Sets the host the request arrived for when it is not in a `Host` header (HTTP/2 carries
    /// it in `:authority`, which axum exposes through the URI). Used only to diagnose a
    /// rejection, like [`DeliveryRequest::with_request_target`].
    pub fn with_request_host(mut self, host: &'a str) -> Self {
        self.request_host = Some(host);
        self
    }

    /// The host the request arrived for: the explicit one, else the `Host` header.
    pub(crate) fn arrival_host(&self) -> Option<&'a str> {
        match self.request_host {
            Some(host) => Some(host.trim()),
            None => self.text("host").and_then(Result::ok),
        }
    }

    /// The raw body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// A header's value as trimmed text, or `None` when absent or not UTF-8.
    pub(crate) fn text(&self, name: &str) -> Option<Result<&'a str, ()>> {
        self.headers
            .header(name)
            .map(|bytes| std::str::from_utf8(bytes).map(str::trim).map_err(drop))
    }
}

impl fmt::Debug for DeliveryRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryRequest")
            .field("body_len", &self.body.len())
            .field("request_target", &self.request_target)
            .field("request_host", &self.request_host)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_looked_up_case_insensitively() {
        let headers = [("X-Ms-Date", "a"), ("x-ms-date", "b"), ("Host", "h")];
        assert_eq!(headers.header("x-ms-date"), Some(&b"a"[..]));
        assert_eq!(headers.header("host"), Some(&b"h"[..]));
        assert_eq!(headers.header("authorization"), None);
    }

    #[test]
    fn header_map_is_looked_up_case_insensitively() {
        let mut map = http::HeaderMap::new();
        map.insert("X-Ms-Date", http::HeaderValue::from_static("d"));
        assert_eq!(map.header("x-ms-date"), Some(&b"d"[..]));
        assert_eq!(map.header("not a header name"), None);
    }

    #[test]
    fn text_trims_and_reports_non_utf8() {
        let headers = vec![
            ("a".to_owned(), b" x ".to_vec()),
            ("b".to_owned(), vec![0xff]),
        ];
        let request = DeliveryRequest::new(&headers, b"");
        assert_eq!(request.text("a"), Some(Ok("x")));
        assert_eq!(request.text("b"), Some(Err(())));
        assert_eq!(request.text("c"), None);
    }

    #[test]
    fn debug_shows_no_body_or_headers() {
        let headers = [("authorization", "HMAC-SHA256 x")];
        let request = DeliveryRequest::new(&headers, b"secret body");
        let shown = format!("{request:?}");
        assert!(shown.contains("body_len: 11"));
        assert!(!shown.contains("secret body"));
    }
}
