//! Payment queries: `GET /payments/{provider}/{reference}` over payments that exist.

use super::source::{Outcome, RequestSource};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;

/// Reads of known payments, spread over them by a fixed pseudo-random walk.
#[derive(Debug, Clone)]
pub struct PaymentQueries {
    pub provider_id: String,
    /// Payments the server has (at least one event each).
    pub references: Vec<String>,
    pub admin_token: String,
    /// The `Host` header.
    pub host: String,
}

impl PaymentQueries {
    fn pick(&self, connection: usize, sequence: u64) -> Option<&String> {
        // SplitMix64 of (connection, sequence): uniform, reproducible, no shared state.
        let mut x = (connection as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(sequence);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let len = u64::try_from(self.references.len()).ok()?;
        let index = usize::try_from(x.checked_rem(len)?).ok()?;
        self.references.get(index)
    }
}

impl RequestSource for PaymentQueries {
    fn request(&self, connection: usize, sequence: u64) -> Request<Full<Bytes>> {
        let reference = self
            .pick(connection, sequence)
            .map_or("none", String::as_str);
        Request::builder()
            .method(Method::GET)
            .uri(format!("/payments/{}/{reference}", self.provider_id))
            .header(header::HOST, &self.host)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.admin_token),
            )
            .body(Full::new(Bytes::new()))
            .unwrap_or_default()
    }

    fn classify(&self, status: StatusCode, _body: &[u8]) -> Outcome {
        if status == StatusCode::OK {
            Outcome::Ok
        } else {
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_ask_for_known_payments_with_the_token() {
        let queries = PaymentQueries {
            provider_id: "bench-shop".into(),
            references: vec!["order-0001".into(), "order-0002".into()],
            admin_token: "token".into(),
            host: "127.0.0.1:1".into(),
        };
        let mut seen = std::collections::BTreeSet::new();
        for sequence in 0..64 {
            let request = queries.request(5, sequence);
            assert_eq!(request.headers()[header::AUTHORIZATION], "Bearer token");
            seen.insert(request.uri().to_string());
        }
        let expected: std::collections::BTreeSet<_> = [
            "/payments/bench-shop/order-0001".to_owned(),
            "/payments/bench-shop/order-0002".to_owned(),
        ]
        .into();
        assert_eq!(seen, expected);
    }
}
