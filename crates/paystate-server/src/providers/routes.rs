//! The `/providers` handlers (SPEC §3.2). Commands decide with the domain's pure decision
//! functions and append to the provider stream with optimistic concurrency; they answer with
//! the provider view once the projections have applied the append (read-your-writes). Anything
//! that talks to Vipps happens in the registration reactor, after the answer.

use super::dto::{
    CreateProviderRequest, CredentialsRequest, EnvironmentRequest, ProviderBody, ProviderListBody,
    RemoteWebhooksBody,
};
use super::{errors, input, stream};
use crate::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, ApiPath};
use crate::openapi::JsonBodyAnswers;
use crate::registration::Target;
use crate::routes::dto::HistoryDto;
use crate::routes::read_your_writes::wait_until_fresh;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use paystate_domain::provider::{decide, decide_create, reconcile, ProviderCommand};
use paystate_domain::ProviderId;
use paystate_store::Position;
use std::time::Duration;

/// How long a command waits for the projections to show its append.
const VIEW_WAIT: Duration = Duration::from_secs(5);

/// The provider view once the projections have applied `position` (or the current head).
async fn view_after(
    state: &AppState,
    id: &ProviderId,
    position: Option<Position>,
) -> Result<ProviderBody, ApiError> {
    match position {
        Some(position) => {
            if !state.projections.wait_for(position, VIEW_WAIT).await {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the change is recorded, but the projections are behind; read it again shortly",
                ));
            }
        }
        None => wait_until_fresh(state).await?,
    }
    state
        .projections
        .read(|projections| projections.provider_view(id))
        .map(|view| ProviderBody::from(&view))
        .ok_or_else(errors::unknown_provider)
}

/// Applies `command` to provider `id` and answers its view.
async fn run_command(
    state: &AppState,
    id: &ProviderId,
    command: ProviderCommand,
) -> Result<Json<ProviderBody>, ApiError> {
    let appended = stream::append_decided(&*state.store, id, |provider| {
        let provider = provider.ok_or_else(errors::unknown_provider)?;
        decide(provider, &command)
            .map(|decision| decision.events)
            .map_err(errors::decision)
    })
    .await?;
    Ok(Json(view_after(state, id, appended.last_position).await?))
}

/// Creates a provider, disabled. Its credentials go to the vault; the log records only their
/// fingerprint.
#[utoipa::path(post, path = "/providers", tag = "providers",
    security(("admin_token" = [])),
    request_body = CreateProviderRequest,
    responses(
        (status = 201, description = "Created, disabled", body = ProviderBody),
        (status = 400, description = "invalid_request: the body is not a JSON object, or a field breaks its rule (named)", body = ErrorBody),
        (status = 409, description = "provider_exists", body = ErrorBody),
        JsonBodyAnswers))]
pub async fn create_provider(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateProviderRequest>,
) -> Result<(StatusCode, Json<ProviderBody>), ApiError> {
    let (created, credentials) = input::create(&body, state.config.public_url.as_str())?;
    let id = created.provider_id.clone();
    // Refuse before storing anything, so an existing provider's credentials stay as they are.
    if stream::load(&*state.store, &id)?.is_some() {
        return Err(errors::decision(
            paystate_domain::provider::DecisionError::ProviderExists(id),
        ));
    }
    state
        .vault
        .put_credentials(&id, &credentials)
        .map_err(errors::vault)?;
    let appended = stream::append_decided(&*state.store, &id, |existing| {
        decide_create(existing, created.clone())
            .map(|decision| decision.events)
            .map_err(errors::decision)
    })
    .await?;
    tracing::info!(provider = %id, "provider created");
    crate::metrics::announce_provider(id.as_str());
    Ok((
        StatusCode::CREATED,
        Json(view_after(&state, &id, appended.last_position).await?),
    ))
}

/// Every provider, ordered by id.
#[utoipa::path(get, path = "/providers", tag = "providers",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every provider's view", body = ProviderListBody),
        (status = 401, description = "unauthorized", body = ErrorBody)))]
pub async fn list_providers(
    State(state): State<AppState>,
) -> Result<Json<ProviderListBody>, ApiError> {
    wait_until_fresh(&state).await?;
    let providers = state.projections.read(|projections| {
        projections
            .providers()
            .map(|provider| ProviderBody::from(&provider.view()))
            .collect()
    });
    Ok(Json(ProviderListBody { providers }))
}

/// One provider: state, current registration and why it was made, counters.
#[utoipa::path(get, path = "/providers/{provider_id}", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody)))]
pub async fn get_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    Ok(Json(view_after(&state, &id, None).await?))
}

/// Replaces the provider's API credentials. While enabled, this re-registers the webhook
/// (reason `credentials_changed`).
#[utoipa::path(put, path = "/providers/{provider_id}/credentials", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    request_body = CredentialsRequest,
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 400, description = "invalid_request: the body is not a JSON object, or a field breaks its rule (named)", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 409, description = "conflict: a concurrent change to the provider won; re-read and try again", body = ErrorBody),
        JsonBodyAnswers))]
pub async fn put_credentials(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CredentialsRequest>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    let credentials = input::credentials(&body, "")?;
    if stream::load(&*state.store, &id)?.is_none() {
        return Err(errors::unknown_provider());
    }
    let credentials_fingerprint = state
        .vault
        .put_credentials(&id, &credentials)
        .map_err(errors::vault)?;
    run_command(
        &state,
        &id,
        ProviderCommand::UpdateCredentials {
            credentials_fingerprint,
        },
    )
    .await
}

/// Moves the provider between `test` and `production`. While enabled, this re-registers the
/// webhook there (reason `environment_changed`) and deletes the old registration.
#[utoipa::path(put, path = "/providers/{provider_id}/environment", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    request_body = EnvironmentRequest,
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 400, description = "invalid_request: the body is not a JSON object, or the environment is unknown", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 409, description = "conflict: a concurrent change to the provider won; re-read and try again", body = ErrorBody),
        JsonBodyAnswers))]
pub async fn put_environment(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EnvironmentRequest>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    let to = input::environment(&body.environment, "environment")?;
    run_command(&state, &id, ProviderCommand::ChangeEnvironment { to }).await
}

/// Enables the provider: its webhook is registered at Vipps automatically (reason `enabled`).
#[utoipa::path(post, path = "/providers/{provider_id}/enable", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 400, description = "invalid_request: the provider id breaks its rule", body = ErrorBody),
        (status = 409, description = "conflict: a concurrent change to the provider won; re-read and try again", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot write now; retry", body = ErrorBody)))]
pub async fn enable_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    run_command(&state, &id, ProviderCommand::Enable).await
}

/// Disables the provider. Its registrations are left in place, so deliveries already on their
/// way still verify.
#[utoipa::path(post, path = "/providers/{provider_id}/disable", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 400, description = "invalid_request: the provider id breaks its rule", body = ErrorBody),
        (status = 409, description = "conflict: a concurrent change to the provider won; re-read and try again", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot write now; retry", body = ErrorBody)))]
pub async fn disable_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    run_command(&state, &id, ProviderCommand::Disable).await
}

/// Ensures one working registration: records a no-op fact (`webhook_registration_skipped`) if
/// there is one or one is on its way, otherwise asks for a registration (reason `manual`). Also
/// makes the reactor compare with Vipps' list, removing stray registrations for our URL.
#[utoipa::path(post, path = "/providers/{provider_id}/webhook/register", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 409, description = "provider_disabled", body = ErrorBody),
        (status = 400, description = "invalid_request: the provider id breaks its rule", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot write now; retry", body = ErrorBody)))]
pub async fn register_webhook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    run_command(&state, &id, ProviderCommand::Register).await
}

/// Registers a new webhook with a new secret (reason `rotate`), then deletes the old one. The
/// old secret is still accepted while its registration exists and for the grace period after.
#[utoipa::path(post, path = "/providers/{provider_id}/webhook/rotate", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "The provider view", body = ProviderBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 409, description = "provider_disabled", body = ErrorBody),
        (status = 400, description = "invalid_request: the provider id breaks its rule", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot write now; retry", body = ErrorBody)))]
pub async fn rotate_webhook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderBody>, ApiError> {
    let id = input::provider_id(&id)?;
    run_command(&state, &id, ProviderCommand::Rotate).await
}

/// What Vipps lists for the provider's MSN right now, each entry marked `ours_current`,
/// `ours_old` or `foreign`.
#[utoipa::path(get, path = "/providers/{provider_id}/webhook/remote", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "Vipps' registrations for the MSN", body = RemoteWebhooksBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 502, description = "vipps_error: Vipps could not be asked", body = ErrorBody),
        (status = 400, description = "invalid_request: the provider id breaks its rule", body = ErrorBody)))]
pub async fn remote_webhooks(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RemoteWebhooksBody>, ApiError> {
    let id = input::provider_id(&id)?;
    let provider = stream::load(&*state.store, &id)?
        .ok_or_else(errors::unknown_provider)?
        .provider;
    let our_url = provider.webhook_url().map_err(ApiError::internal)?;
    let target = Target {
        provider: provider.id.clone(),
        environment: provider.environment,
        msn: provider.msn.clone(),
        credentials_fingerprint: provider.credentials_fingerprint.clone(),
    };
    let api = state.webhook_apis.connect(&target).map_err(errors::vipps)?;
    let remote = api.list().await.map_err(errors::vipps)?;
    let classified = reconcile(&provider, &remote).remote;
    Ok(Json(RemoteWebhooksBody {
        provider_id: provider.id.to_string(),
        msn: provider.msn.to_string(),
        our_url: our_url.to_string(),
        webhooks: classified.iter().map(Into::into).collect(),
    }))
}

/// Every fact of the provider's stream, in log order: configuration changes, registrations
/// and their outcomes, rejected deliveries.
#[utoipa::path(get, path = "/providers/{provider_id}/history", tag = "providers",
    security(("admin_token" = [])),
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, description = "The provider's history", body = HistoryDto),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_provider", body = ErrorBody),
        (status = 400, description = "invalid_request: the provider id breaks its rule", body = ErrorBody)))]
pub async fn provider_history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HistoryDto>, ApiError> {
    let id = input::provider_id(&id)?;
    let entries =
        paystate_projections::provider_history(state.store.as_ref(), &id).map_err(|error| {
            match error {
                paystate_projections::ProjectionError::Store(error) => ApiError::from(error),
            }
        })?;
    if entries.is_empty() {
        return Err(errors::unknown_provider());
    }
    Ok(Json(HistoryDto {
        events: entries.into_iter().map(Into::into).collect(),
    }))
}
