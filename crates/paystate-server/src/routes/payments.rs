//! `/payments`: payment views, histories, listing and time travel (SPEC §3.3). Admin token.

use super::dto::{HistoryDto, PaymentDto, PaymentPageDto};
use super::read_your_writes::wait_until_fresh;
use crate::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use paystate_domain::payment::PaymentState;
use paystate_domain::{ProviderId, Reference};
use paystate_projections::AsOf;
use paystate_store::Position;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(payment_history))
}

/// Default and largest page size of `GET /payments`.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

fn parse_provider(raw: &str) -> Result<ProviderId, ApiError> {
    ProviderId::parse(raw).map_err(|error| ApiError::invalid_field("provider_id", error))
}

fn parse_reference(raw: &str) -> Result<Reference, ApiError> {
    Reference::parse(raw).map_err(|error| ApiError::invalid_field("reference", error))
}

fn unknown_payment() -> ApiError {
    ApiError::not_found(
        "unknown_payment",
        "no payment with this provider and reference",
    )
}

/// Time travel: at most one of the two.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// Answer as of this global log position.
    pub at: Option<u64>,
    /// Answer as of this recorded time (RFC 3339).
    pub as_of: Option<String>,
}

impl AsOfQuery {
    fn as_of(&self) -> Result<Option<AsOf>, ApiError> {
        match (self.at, self.as_of.as_deref()) {
            (Some(_), Some(_)) => Err(ApiError::invalid_request(
                "give either `at` or `as_of`, not both",
            )),
            (Some(at), None) => Ok(Some(AsOf::Position(Position(at)))),
            (None, Some(text)) => OffsetDateTime::parse(text, &Rfc3339)
                .map(|time| Some(AsOf::Time(time)))
                .map_err(|_| {
                    ApiError::invalid_field(
                        "as_of",
                        "must be an RFC 3339 date-time, e.g. 2025-01-14T09:30:05Z \
                         (in a URL, write the + of an offset as %2B)",
                    )
                }),
            (None, None) => Ok(None),
        }
    }
}

/// A payment's current state and aggregate, or as of a position or time.
#[utoipa::path(get, path = "/payments/{provider_id}/{reference}", tag = "payments",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path), ("reference" = String, Path), AsOfQuery),
    responses(
        (status = 200, description = "The payment view", body = PaymentDto),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_payment", body = ErrorBody),
        (status = 503, description = "unavailable: the views did not catch up with the log within 5 s; retry", body = ErrorBody)))]
pub async fn get_payment(
    State(state): State<AppState>,
    ApiPath((provider, reference)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<Json<PaymentDto>, ApiError> {
    let provider = parse_provider(&provider)?;
    let reference = parse_reference(&reference)?;
    let view = match query.as_of()? {
        Some(as_of) => {
            paystate_projections::payment_as_of(state.store.as_ref(), &provider, &reference, as_of)
                .map_err(projection_error)?
        }
        None => {
            wait_until_fresh(&state).await?;
            state
                .projections
                .read(|p| p.payment_view(&provider, &reference))
        }
    };
    view.map(|view| Json(PaymentDto::from(view)))
        .ok_or_else(unknown_payment)
}

/// Every fact recorded about a payment, in log order; with `at` or `as_of`, those recorded up
/// to that position or time.
#[utoipa::path(get, path = "/payments/{provider_id}/{reference}/history", tag = "payments",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path), ("reference" = String, Path), AsOfQuery),
    responses(
        (status = 200, description = "The payment's history", body = HistoryDto),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_payment", body = ErrorBody),
        (status = 503, description = "unavailable: the views did not catch up with the log within 5 s; retry", body = ErrorBody)))]
pub async fn payment_history(
    State(state): State<AppState>,
    ApiPath((provider, reference)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<Json<HistoryDto>, ApiError> {
    let provider = parse_provider(&provider)?;
    let reference = parse_reference(&reference)?;
    let entries = paystate_projections::payment_history(
        state.store.as_ref(),
        &provider,
        &reference,
        query.as_of()?,
    )
    .map_err(projection_error)?;
    if entries.is_empty() {
        return Err(unknown_payment());
    }
    Ok(Json(HistoryDto {
        events: entries.into_iter().map(Into::into).collect(),
    }))
}

/// Filters and cursor of the payment listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this provider's payments.
    pub provider_id: Option<String>,
    /// Only payments in this state (`CREATED`, `AUTHORIZED`, `ABORTED`, `EXPIRED`, `TERMINATED`).
    pub state: Option<String>,
    /// The `next` of the previous page (payments are listed in the order first seen).
    pub after: Option<u64>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<usize>,
}

/// A page of payments in the order they were first seen.
#[utoipa::path(get, path = "/payments", tag = "payments",
    security(("admin_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of payment views", body = PaymentPageDto),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 503, description = "unavailable: the views did not catch up with the log within 5 s; retry", body = ErrorBody)))]
pub async fn list_payments(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PaymentPageDto>, ApiError> {
    let provider = query
        .provider_id
        .as_deref()
        .map(parse_provider)
        .transpose()?;
    let payment_state = query
        .state
        .as_deref()
        .map(|text| {
            PaymentState::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                ApiError::invalid_field(
                    "state",
                    "must be CREATED, AUTHORIZED, ABORTED, EXPIRED or TERMINATED",
                )
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid_field("limit", "must be 1 to 500"));
    }
    wait_until_fresh(&state).await?;
    let page = state.projections.read(|p| {
        p.list_payments(
            provider.as_ref(),
            payment_state,
            query.after.unwrap_or(0),
            limit,
        )
    });
    Ok(Json(PaymentPageDto {
        payments: page
            .payments
            .into_iter()
            // A payment without a fact has no state (its `state` is null): it matches no
            // state filter, so a page may hold fewer than `limit`.
            .filter(|view| payment_state.is_none() || view.events > 0)
            .map(Into::into)
            .collect(),
        next: page.next,
    }))
}

pub(crate) fn projection_error(error: paystate_projections::ProjectionError) -> ApiError {
    match error {
        paystate_projections::ProjectionError::Store(error) => ApiError::from(error),
    }
}
