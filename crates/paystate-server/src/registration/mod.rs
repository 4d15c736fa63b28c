//! The registration reactor: keeps each enabled provider at exactly one working webhook
//! registration at Vipps, without anyone pressing a button (SPEC §3.2, VIPPS.md §6).
//!
//! Admin commands only append facts (`provider_enabled`, `credentials_updated`,
//! `webhook_registration_requested`, ...). The reactor follows the log and, per provider,
//! converges what Vipps has with what the log asks for:
//!
//! 1. reconcile with Vipps' list first: record a registration made just before a crash
//!    (from the [`journal`]), delete registrations for our URL whose secret we do not hold;
//! 2. register, seal the secret in the vault under the next secret version, write the journal,
//!    and only then append `webhook_registered` (version and fingerprint only);
//! 3. after the handover (ten minutes by default), delete what the new registration superseded
//!    (`webhook_deleted`);
//! 4. on failure append `webhook_registration_failed` with the attempt number and the retry
//!    time (exponential [`backoff`] with a cap), visible as `last_registration_error`;
//! 5. at start, after every change and periodically, compare settled providers with Vipps'
//!    list: strays are deleted, vanished registrations recorded, a missing one repaired.
//!
//! Module map: [`api`] (the Webhooks API as a trait, and [`vipps`] the real client behind it),
//! [`converge`] (one provider's step, with `register` and `cleanup` carrying out its parts),
//! [`reactor`] (the follow loop and wake-ups), [`journal`], [`backoff`].

pub mod api;
pub mod backoff;
mod cleanup;
pub mod converge;
pub mod journal;
pub mod reactor;
mod register;
pub mod vipps;

pub use api::{Deletion, NewRegistration, Target, WebhookApi, WebhookApiError, WebhookApiFactory};
pub use backoff::Backoff;
pub use converge::{Converger, ReactorOptions, StepError, Wake, REGISTRATION_OUTCOMES_TOTAL};
pub use reactor::RegistrationReactor;
pub use vipps::VippsWebhooks;

use crate::config::VippsBaseUrl;
use crate::secrets::SecretVault;
use crate::shutdown::BackgroundTasks;
use crate::state::AppState;
use paystate_domain::{HttpUrl, IdError};
use std::sync::Arc;

/// The real Webhooks API: the vault's credentials, and the `--vipps-base-url` override when
/// set.
pub fn vipps_apis(
    vault: Arc<SecretVault>,
    base_url_override: Option<&VippsBaseUrl>,
) -> Arc<VippsWebhooks> {
    Arc::new(VippsWebhooks::new(
        vault,
        base_url_override.map(|url| url.as_str().to_owned()),
    ))
}

/// Starts the registration reactor under `tasks` with `options`. It starts from what the
/// projections already hold (the providers and the position they reflect) and follows the log
/// from there, so a restart does not read the whole log again. Fails only if the server's
/// public URL cannot be a webhook base (longer than a URL may be).
pub fn start(
    tasks: &mut BackgroundTasks,
    state: &AppState,
    options: ReactorOptions,
) -> Result<(), IdError> {
    let public_url = HttpUrl::parse(state.config.public_url.as_str())?;
    metrics::describe_counter!(
        REGISTRATION_OUTCOMES_TOTAL,
        "Webhook registration outcomes by provider: registered, adopted, failed, deleted."
    );
    let (after, providers) = state.projections.read(|projections| {
        let providers = projections
            .providers()
            .map(|provider| provider.id.clone())
            .collect();
        (projections.applied(), providers)
    });
    let converger = Converger {
        store: state.store.clone(),
        vault: state.vault.clone(),
        apis: state.webhook_apis.clone(),
        options,
    };
    let reactor = RegistrationReactor::new(converger, public_url).starting_after(after, providers);
    tasks.spawn("registration reactor", move |stop| reactor.run(stop));
    Ok(())
}

#[cfg(test)]
mod tests;
