//! [`VerificationPlan`]: what verifying one provider's deliveries needs, derived once from the
//! provider and reused by every delivery until the provider changes.
//!
//! A delivery needs few things from the provider aggregate (its id, MSN, accepted secret
//! versions and the registered URL each was signed under), yet the aggregate changes with every
//! delivery (its counters), and deriving them means parsing URLs. So a plan keeps a copy of just
//! the inputs it was derived from ([`Inputs`]); a delivery compares them with the provider in
//! place, under the projections' read lock, and rebuilds the plan only when they differ or when
//! a retired secret's grace period ends.

use paystate_domain::provider::Provider;
use paystate_domain::{HttpUrl, Msn, ProviderId, RegistrationId, SecretVersion};
use paystate_vipps::RegisteredUrl;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use time::OffsetDateTime;

/// Verification material of one provider.
pub struct VerificationPlan {
    inputs: Inputs,
    /// The first moment the accepted versions differ: a retired secret's grace period ends.
    valid_until: Option<OffsetDateTime>,
    pub id: ProviderId,
    pub msn: Msn,
    /// Accepted secret versions, newest first, each with the index in `urls` of the URL its
    /// registration was made for (`None`: no URL can be formed for it).
    pub accepted: Vec<(SecretVersion, Option<usize>)>,
    /// The distinct registered URLs the accepted versions were signed under.
    pub urls: Vec<RegisteredUrl>,
    /// The URL the provider would register now, as an index in `urls`.
    pub default_url: Option<usize>,
    /// The live registration of each secret version (the first, as the provider lists them).
    registrations: Vec<(SecretVersion, RegistrationId)>,
    /// The provider's delivery counters, registered once.
    pub counters: OutcomeCounters,
}

impl VerificationPlan {
    /// Derives the plan of `provider` at `now`, with `grace` for retired secrets.
    fn derive(provider: &Provider, now: OffsetDateTime, grace: time::Duration) -> Self {
        let mut urls: Vec<RegisteredUrl> = Vec::new();
        let mut url_index = |url: Option<RegisteredUrl>| {
            let url = url?;
            Some(match urls.iter().position(|known| *known == url) {
                Some(index) => index,
                None => {
                    urls.push(url);
                    urls.len() - 1
                }
            })
        };
        let default_url = url_index(
            provider
                .webhook_url()
                .ok()
                .and_then(|url| RegisteredUrl::parse(url.as_str()).ok()),
        );
        let accepted = provider
            .accepted_secret_versions(now, grace)
            .into_iter()
            .map(|version| {
                let registered = provider
                    .live_registrations()
                    .find(|registration| registration.secret_version == version)
                    .and_then(|registration| RegisteredUrl::parse(registration.url.as_str()).ok());
                let index = match registered {
                    Some(url) => url_index(Some(url)),
                    None => default_url,
                };
                (version, index)
            })
            .collect();
        let valid_until = provider
            .retired
            .iter()
            .filter(|retired| retired.secret_version.is_some())
            .filter_map(|retired| retired.deleted_at.checked_add(grace))
            .filter(|until| *until > now)
            .min();
        VerificationPlan {
            inputs: Inputs::of(provider),
            valid_until,
            id: provider.id.clone(),
            msn: provider.msn.clone(),
            accepted,
            urls,
            default_url,
            registrations: provider
                .live_registrations()
                .map(|registration| {
                    (
                        registration.secret_version,
                        registration.registration_id.clone(),
                    )
                })
                .collect(),
            counters: OutcomeCounters::new(provider.id.as_str()),
        }
    }

    /// Whether this plan is still the one `provider` gives at `now`.
    fn holds_for(&self, provider: &Provider, now: OffsetDateTime) -> bool {
        self.valid_until.is_none_or(|until| now < until) && self.inputs.match_provider(provider)
    }

    /// The live registration whose secret is `version`.
    pub fn registration_of(&self, version: SecretVersion) -> Option<&RegistrationId> {
        self.registrations
            .iter()
            .find(|(registered, _)| *registered == version)
            .map(|(_, id)| id)
    }
}

impl std::fmt::Debug for VerificationPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationPlan")
            .field("id", &self.id)
            .field("accepted", &self.accepted)
            .field("urls", &self.urls)
            .field("default_url", &self.default_url)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// What a plan is derived from, copied out of the provider.
#[derive(PartialEq, Eq)]
struct Inputs {
    msn: Msn,
    public_url: HttpUrl,
    /// Live registrations in the provider's order: id, URL and secret version.
    live: Vec<(RegistrationId, HttpUrl, SecretVersion)>,
    pending: Option<SecretVersion>,
    retired: Vec<(Option<SecretVersion>, OffsetDateTime)>,
}

impl Inputs {
    fn of(provider: &Provider) -> Self {
        Inputs {
            msn: provider.msn.clone(),
            public_url: provider.public_url.clone(),
            live: provider
                .live_registrations()
                .map(|r| (r.registration_id.clone(), r.url.clone(), r.secret_version))
                .collect(),
            pending: provider.pending.as_ref().and_then(|p| p.secret_version),
            retired: provider
                .retired
                .iter()
                .map(|r| (r.secret_version, r.deleted_at))
                .collect(),
        }
    }

    /// The comparison with a provider, without copying anything out of it.
    fn match_provider(&self, provider: &Provider) -> bool {
        self.msn == provider.msn
            && self.public_url == provider.public_url
            && self.pending == provider.pending.as_ref().and_then(|p| p.secret_version)
            && self.live.len() == provider.live_registrations().count()
            && self.live.iter().zip(provider.live_registrations()).all(
                |((id, url, version), registration)| {
                    *version == registration.secret_version
                        && *id == registration.registration_id
                        && *url == registration.url
                },
            )
            && self.retired.len() == provider.retired.len()
            && self
                .retired
                .iter()
                .zip(&provider.retired)
                .all(|((version, deleted_at), retired)| {
                    *version == retired.secret_version && *deleted_at == retired.deleted_at
                })
    }
}

/// `paystate_webhooks_total` of one provider, one handle per outcome, so that counting a
/// delivery is an atomic add rather than a registry lookup with an owned label.
pub struct OutcomeCounters {
    pub accepted: metrics::Counter,
    pub anomaly: metrics::Counter,
    pub duplicate: metrics::Counter,
    pub rejected: metrics::Counter,
    pub unavailable: metrics::Counter,
    pub too_large: metrics::Counter,
}

impl std::fmt::Debug for OutcomeCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutcomeCounters").finish_non_exhaustive()
    }
}

impl OutcomeCounters {
    /// Makes every delivery counter of `provider` appear in `/metrics` at 0, so that a
    /// provider's deliveries staying at zero (after a restart, or since its creation) is
    /// visible, rather than a series that does not exist yet.
    pub fn announce(provider: &str) {
        let counters = OutcomeCounters::new(provider);
        for counter in [
            &counters.accepted,
            &counters.anomaly,
            &counters.duplicate,
            &counters.rejected,
            &counters.unavailable,
            &counters.too_large,
        ] {
            counter.increment(0);
        }
    }

    fn new(provider: &str) -> Self {
        let counter = |outcome: &'static str| metrics::counter!(crate::metrics::WEBHOOKS_TOTAL, "outcome" => outcome, "provider" => provider.to_owned());
        OutcomeCounters {
            accepted: counter("accepted"),
            anomaly: counter("anomaly"),
            duplicate: counter("duplicate"),
            rejected: counter("rejected"),
            unavailable: counter("unavailable"),
            too_large: counter("too_large"),
        }
    }
}

/// The plans of every provider that received a delivery. Holds at most one plan per provider
/// (providers are created by the operator, so the map stays small).
#[derive(Debug, Default)]
pub struct VerificationPlans {
    by_provider: RwLock<HashMap<ProviderId, Arc<VerificationPlan>>>,
}

impl VerificationPlans {
    /// The plan of `provider` at `now`: the cached one while it holds, else a new one.
    pub fn plan_for(
        &self,
        provider: &Provider,
        now: OffsetDateTime,
        grace: time::Duration,
    ) -> Arc<VerificationPlan> {
        let cached = self
            .by_provider
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&provider.id)
            .filter(|plan| plan.holds_for(provider, now))
            .cloned();
        if let Some(plan) = cached {
            return plan;
        }
        let plan = Arc::new(VerificationPlan::derive(provider, now, grace));
        // A poisoned map holds whole plans only (each write is one insert).
        self.by_provider
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(provider.id.clone(), plan.clone());
        plan
    }
}

#[cfg(test)]
mod tests;
