//! Errors of the Vipps API client, shaped by what a caller can do about them.

use serde::Deserialize;

/// How much of an unexpected answer body an error keeps.
const EXCERPT_CHARS: usize = 200;

/// One entry of a problem's `extraDetails`: which input field and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExtraDetail {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A failed call to a Vipps API. Never carries a secret: credentials and tokens travel only in
/// headers, and no header is ever copied into an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VippsApiError {
    /// Vipps refused the request with an `application/problem+json` answer (VIPPS.md §1).
    #[error("Vipps answered {status}: {}{}", title.as_deref().unwrap_or("problem"), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Problem {
        status: u16,
        /// The problem `type` URI, if given.
        problem_type: Option<String>,
        title: Option<String>,
        detail: Option<String>,
        extra_details: Vec<ExtraDetail>,
        trace_id: Option<String>,
    },
    /// 401 or 403: the access token, the subscription key or the credentials are wrong, or the
    /// sales unit lacks access to this API.
    #[error("Vipps refused the credentials ({status}){}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Unauthorized { status: u16, detail: Option<String> },
    /// Any other unsuccessful status, with the start of the body.
    #[error("Vipps answered {status}: {body_excerpt}")]
    Status { status: u16, body_excerpt: String },
    /// No answer within the request timeout (or no connection within the connect timeout).
    #[error("Vipps did not answer in time")]
    Timeout,
    /// The request could not be sent or the answer not read (DNS, TLS, connection reset...).
    #[error("could not reach Vipps: {0}")]
    Transport(String),
    /// A successful answer whose body is not what the API documents.
    #[error("Vipps sent an unexpected answer: {0}")]
    InvalidResponse(String),
    /// The request cannot be made as asked (e.g. a test-only call in production).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl VippsApiError {
    /// Whether trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            VippsApiError::Timeout | VippsApiError::Transport(_) => true,
            VippsApiError::Problem { status, .. } | VippsApiError::Status { status, .. } => {
                *status == 429 || *status >= 500
            }
            VippsApiError::Unauthorized { .. }
            | VippsApiError::InvalidResponse(_)
            | VippsApiError::InvalidRequest(_) => false,
        }
    }

    /// The HTTP status Vipps answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VippsApiError::Problem { status, .. }
            | VippsApiError::Unauthorized { status, .. }
            | VippsApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn from_reqwest(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            VippsApiError::Timeout
        } else {
            // `without_url` is not needed: request URLs carry no secrets (only ids). reqwest's
            // own text says only that sending failed; the cause (connection refused, a DNS
            // or TLS failure) is in its sources.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.ends_with(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            VippsApiError::Transport(text)
        }
    }

    /// Maps an unsuccessful answer to an error.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Self {
        let problem = serde_json::from_slice::<ProblemBody>(body).ok();
        if status == 401 || status == 403 {
            let detail = problem.and_then(|p| p.detail.or(p.title).or(p.message));
            return VippsApiError::Unauthorized { status, detail };
        }
        match problem {
            Some(problem)
                if problem.title.is_some()
                    || problem.detail.is_some()
                    || problem.problem_type.is_some() =>
            {
                VippsApiError::Problem {
                    status,
                    problem_type: problem.problem_type,
                    title: problem.title,
                    detail: problem.detail,
                    extra_details: problem.extra_details.unwrap_or_default(),
                    trace_id: problem.trace_id,
                }
            }
            _ => VippsApiError::Status {
                status,
                body_excerpt: excerpt(body),
            },
        }
    }
}

/// The problem+json body (RFC 9457 with Vipps's `traceId` and `extraDetails`), read tolerantly.
#[derive(Deserialize)]
struct ProblemBody {
    #[serde(rename = "type", default)]
    problem_type: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    /// Some gateway errors carry only `message`.
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "traceId", default)]
    trace_id: Option<String>,
    #[serde(rename = "extraDetails", default)]
    extra_details: Option<Vec<ExtraDetail>>,
}

pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut shown: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_json_becomes_a_typed_problem() {
        let body = br#"{"type":"https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/errors","title":"Bad Request","status":400,"detail":"Capture amount exceeds authorized amount","instance":"/x","traceId":"abc-123","extraDetails":[{"name":"modificationAmount","reason":"too large"}]}"#;
        let error = VippsApiError::from_answer(400, body);
        assert_eq!(
            error,
            VippsApiError::Problem {
                status: 400,
                problem_type: Some(
                    "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/errors"
                        .into()
                ),
                title: Some("Bad Request".into()),
                detail: Some("Capture amount exceeds authorized amount".into()),
                extra_details: vec![ExtraDetail {
                    name: Some("modificationAmount".into()),
                    reason: Some("too large".into())
                }],
                trace_id: Some("abc-123".into()),
            }
        );
        assert_eq!(
            error.to_string(),
            "Vipps answered 400: Bad Request (Capture amount exceeds authorized amount)"
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn auth_failures_are_unauthorized() {
        let error = VippsApiError::from_answer(
            401,
            br#"{"title":"Unauthorized","detail":"token expired"}"#,
        );
        assert_eq!(
            error,
            VippsApiError::Unauthorized {
                status: 401,
                detail: Some("token expired".into())
            }
        );
        assert_eq!(
            VippsApiError::from_answer(403, b""),
            VippsApiError::Unauthorized {
                status: 403,
                detail: None
            }
        );
    }

    #[test]
    fn other_answers_keep_a_bounded_excerpt() {
        let error = VippsApiError::from_answer(502, "x".repeat(1000).as_bytes());
        let VippsApiError::Status {
            status: 502,
            body_excerpt,
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!(body_excerpt.chars().count(), 201);
        assert!(error.is_transient());
        assert_eq!(VippsApiError::from_answer(500, b"[1]").status(), Some(500));
    }

    proptest::proptest! {
        #[test]
        fn any_error_answer_maps_without_panicking(status in 100u16..600, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let error = VippsApiError::from_answer(status, &body);
            proptest::prop_assert_eq!(error.status(), Some(status));
            proptest::prop_assert!(!error.to_string().is_empty());
        }
    }
}
