//! `POST /webhooks/vipps/{provider_id}`: verified ingestion (SPEC §3.1).
//!
//! raw bytes -> provider lookup -> signature verification against every accepted secret
//! version under the registered URL ([`verify`]) -> parse ([`record::parse`]) -> one durable
//! append of receipt and fact, deduplicated on the event identity ([`record::record`]) -> `200`.
//! Forgeries get `401` and a bounded rejection record ([`rejections`]).

pub mod plan;
pub mod record;
pub mod rejections;
pub mod verify;

use crate::error::{ApiError, ErrorBody};
use crate::http::extract::ApiPath;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use paystate_domain::events::{
    bounded_text, DomainEvent, RejectionCode, RejectionDiagnosis, WebhookReceived, WebhookRejected,
};
use paystate_domain::{streams, ProviderId};
use paystate_store::{ExpectedVersion, NewEvent, StreamId};
use paystate_vipps::DeliveryRequest;
use plan::VerificationPlan;
use record::Recorded;
use rejections::Admission;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use verify::Verdict;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_vipps_webhook))
}

/// The answer to an authentic delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `accepted` (recorded now) or `duplicate` (recorded before).
    pub status: &'static str,
    /// Where the delivery's fact was recorded (`accepted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Where the fact was first recorded (`duplicate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_position: Option<u64>,
    /// `true` when the delivery was authentic but unexpected and was recorded as an anomaly.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub anomaly: bool,
}

/// How long ingestion waits for the projections to see a just-created provider.
const PROVIDER_LOOKUP_WAIT: Duration = Duration::from_secs(2);

/// Receive a Vipps MobilePay webhook delivery.
///
/// Authenticated by its HMAC signature (`Authorization` or `X-Vipps-Authorization`,
/// `x-ms-date`, `x-ms-content-sha256`), not by the admin token. The answer is sent only after
/// the delivery is durably recorded.
#[utoipa::path(post, path = "/webhooks/vipps/{provider_id}", tag = "ingestion",
    params(("provider_id" = String, Path, description = "The provider the webhook was registered for")),
    request_body(content = String, content_type = "application/json", description = "The raw ePayment event, exactly as signed"),
    responses(
        (status = 200, description = "Authentic: recorded (accepted), already recorded (duplicate), or recorded as an anomaly", body = WebhookAck),
        (status = 401, description = "Not authentic: missing_signature, invalid_signature, content_hash_mismatch or stale_date", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 408, description = "request_timeout: the body did not arrive within 10 s", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 503, description = "unavailable: not durable, retry", body = ErrorBody)))]
pub async fn receive_vipps_webhook(
    State(state): State<AppState>,
    path: Result<ApiPath<String>, ApiError>,
    request: Request,
) -> Result<Json<WebhookAck>, ApiError> {
    // A path segment that is not UTF-8 names no provider: the same 404 as any unknown id.
    let raw_id = path.map(|ApiPath(id)| id).unwrap_or_default();
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let correlation = request_correlation(&parts.headers);

    let plan = find_plan(&state, &raw_id).await?;
    let body = crate::http::body::read_limited(body, state.config.body_limit)
        .await
        .inspect_err(|error| {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                plan.counters.too_large.increment(1);
            }
        })?;

    let now = OffsetDateTime::now_utc();
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    // The delivery view borrows the headers as `&dyn HeaderLookup` (not `Send`): it must not
    // live across an `.await`, hence the block.
    let verdict = {
        let mut delivery = DeliveryRequest::new(&parts.headers, &body).with_request_target(target);
        if let Some(authority) = parts.uri.authority() {
            delivery = delivery.with_request_host(authority.as_str());
        }
        verify::verify(
            &plan,
            &state.vault,
            &delivery,
            now,
            state.config.date_tolerance,
        )
    }
    .map_err(|error| {
        tracing::error!(%error, provider = %plan.id, "webhook secrets unreadable");
        plan.counters.unavailable.increment(1);
        ApiError::unavailable()
    })?;

    let (verified, registration_id) = match verdict {
        Verdict::Authentic {
            verified,
            registration_id,
        } => (verified, registration_id),
        Verdict::Rejected(rejection) => {
            let code = rejection.code();
            let record = RejectionRecord {
                code,
                diagnosis: rejection.domain_diagnosis(),
                message: rejection.message(),
            };
            return Err(reject(&state, &plan, &parts.headers, &body, peer, now, record).await);
        }
        Verdict::NoUrl => {
            let record = RejectionRecord {
                code: RejectionCode::InvalidSignature,
                diagnosis: RejectionDiagnosis::Unknown,
                message: "the provider has no webhook URL to verify against".to_owned(),
            };
            return Err(reject(&state, &plan, &parts.headers, &body, peer, now, record).await);
        }
    };

    let verification = verified.summary(registration_id);
    let receipt = WebhookReceived {
        provider_id: plan.id.clone(),
        webhook_id: parts
            .headers
            .get("webhook-id")
            .and_then(|value| value.to_str().ok())
            .map(|value| bounded_text(value, 128)),
        body_base64: record::body_base64(&body),
        signed: verified.signed,
        received_at: now,
        verification,
    };
    let parsed = record::parse(&plan.id, &plan.msn, &body);
    let outcome = record::record(
        state.store.as_ref(),
        &state.shared().append_metrics,
        &plan.id,
        receipt,
        parsed,
        &body,
        correlation,
    )
    .await
    .inspect_err(|_| plan.counters.unavailable.increment(1))?;
    match outcome {
        Recorded::Accepted { position, anomaly } => {
            if anomaly {
                plan.counters.anomaly.increment(1);
            } else {
                plan.counters.accepted.increment(1);
            }
            Ok(Json(WebhookAck {
                status: "accepted",
                position: Some(position.0),
                original_position: None,
                anomaly,
            }))
        }
        Recorded::Duplicate { original_position } => {
            plan.counters.duplicate.increment(1);
            Ok(Json(WebhookAck {
                status: "duplicate",
                position: None,
                original_position: Some(original_position.0),
                anomaly: false,
            }))
        }
    }
}

/// The `provider` label of deliveries for no known provider: it starts with `_`, which no
/// provider id does, so it never merges with a real provider's series.
pub const NO_PROVIDER_LABEL: &str = "_none";

/// Counts a delivery for no known provider.
fn count_without_provider(outcome: &'static str) {
    metrics::counter!(crate::metrics::WEBHOOKS_TOTAL, "outcome" => outcome, "provider" => NO_PROVIDER_LABEL)
        .increment(1);
}

/// The request id as the correlation id of the recorded events, when it is a UUID.
fn request_correlation(headers: &HeaderMap) -> uuid::Uuid {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| uuid::Uuid::parse_str(value).ok())
        .unwrap_or_else(uuid::Uuid::now_v7)
}

/// The verification plan of the provider from the projections. A provider created a moment
/// ago may not be applied yet, so a miss waits for the projections to reach the log head once.
/// While the projections are still catching up after a start, a miss is `503` (retry) rather
/// than `404`: the provider may well exist further down the log.
async fn find_plan(state: &AppState, raw_id: &str) -> Result<Arc<VerificationPlan>, ApiError> {
    let unknown = || {
        count_without_provider("unknown_provider");
        ApiError::not_found("unknown_provider", "no provider with this id")
    };
    let id = ProviderId::parse(raw_id).map_err(|_| unknown())?;
    let grace =
        time::Duration::try_from(state.config.secret_grace_period).unwrap_or(time::Duration::MAX);
    let lookup = || {
        let now = OffsetDateTime::now_utc();
        state.projections.read(|projections| {
            projections
                .provider(&id)
                .map(|provider| state.shared().plans.plan_for(provider, now, grace))
        })
    };
    if let Some(plan) = lookup() {
        return Ok(plan);
    }
    let head = state.store.head()?;
    if head > state.projections.applied() {
        state.projections.wait_for(head, PROVIDER_LOOKUP_WAIT).await;
    }
    if let Some(plan) = lookup() {
        return Ok(plan);
    }
    if !state.projections.is_caught_up() {
        count_without_provider("unavailable");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is still reading its log; retry shortly",
        ));
    }
    Err(unknown())
}

struct RejectionRecord {
    code: RejectionCode,
    diagnosis: RejectionDiagnosis,
    message: String,
}

/// Records the rejection within the budget and builds the `401`.
async fn reject(
    state: &AppState,
    plan: &VerificationPlan,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<SocketAddr>,
    now: OffsetDateTime,
    record: RejectionRecord,
) -> ApiError {
    plan.counters.rejected.increment(1);
    let (admission, finished) = state.rejections.admit(&plan.id, now);
    if let Some(window) = finished {
        rejections::record_suppressed(state.store.as_ref(), window).await;
    }
    match admission {
        Admission::Record => {
            let event = DomainEvent::from(WebhookRejected {
                provider_id: plan.id.clone(),
                code: record.code,
                diagnosis: record.diagnosis,
                remote_addr: peer.map(|addr| addr.ip().to_string()),
                headers: paystate_vipps::verify::header_summary(headers),
                body_sha256: hex::encode(Sha256::digest(body)),
                body_size: body.len() as u64,
                received_at: now,
            });
            let new = NewEvent::new(
                event.type_name(),
                event.schema_version(),
                event.to_payload(),
            );
            let stream = StreamId::new(streams::provider_stream(&plan.id));
            if let Err(error) = state
                .store
                .append(&stream, ExpectedVersion::Any, vec![new])
                .await
            {
                tracing::warn!(%error, provider = %plan.id, "could not record a rejected delivery");
            }
        }
        Admission::Count => {
            metrics::counter!(crate::metrics::WEBHOOK_REJECTIONS_SUPPRESSED_TOTAL, "provider" => plan.id.to_string())
                .increment(1);
        }
    }
    let request_id = headers
        .get(crate::http::edge::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info!(provider = %plan.id, code = record.code.as_str(), reason = %record.message, request_id, "webhook rejected");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        record.code.as_str(),
        record.message,
    )
}
