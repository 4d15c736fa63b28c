//! Verifying a delivery against every accepted secret version of the provider, each under the
//! URL its registration was made for (never the request's `Host`).

use super::plan::VerificationPlan;
use crate::secrets::{SecretVault, VaultError};
use paystate_domain::{RegistrationId, SecretVersion};
use paystate_vipps::verify::{Rejection, SecretCandidate, Verified, Verifier};
use paystate_vipps::{DeliveryRequest, WebhookSecret};
use std::time::Duration;
use time::OffsetDateTime;

/// The outcome of verification, with the registration whose secret matched.
#[derive(Debug)]
pub enum Verdict {
    Authentic {
        verified: Verified,
        registration_id: Option<RegistrationId>,
    },
    Rejected(Rejection),
    /// No URL to verify against could be formed from the provider's registrations or its
    /// public URL: nothing can be authentic. Answered `401 invalid_signature`.
    NoUrl,
}

/// Verifies `request` with the provider's `plan` at `now`. The secrets are read from the vault
/// on every delivery: the vault, not the plan, says which versions exist.
pub fn verify(
    plan: &VerificationPlan,
    vault: &SecretVault,
    request: &DeliveryRequest<'_>,
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<Verdict, VaultError> {
    let mut stored = vault.webhook_secrets(&plan.id)?;
    // Newest first, like `accepted`, so a retired secret is diagnosed by its latest version.
    stored.sort_by_key(|(version, _)| std::cmp::Reverse(*version));

    // The accepted versions that have a secret and a URL, newest first, with that URL.
    let mut usable: Vec<(usize, SecretCandidate<'_>)> = Vec::with_capacity(plan.accepted.len());
    for (version, url) in &plan.accepted {
        let Some(secret) = secret_of(&stored, *version) else {
            tracing::warn!(provider = %plan.id, version = version.get(), "accepted secret version missing from the vault");
            continue;
        };
        if let Some(url) = url {
            usable.push((*url, (*version, secret)));
        }
    }
    let retired: Vec<SecretCandidate<'_>> = stored
        .iter()
        .filter(|(version, _)| {
            !plan
                .accepted
                .iter()
                .any(|(accepted, _)| accepted == version)
        })
        .map(|(version, secret)| (*version, secret))
        .collect();

    // Each URL once, in the order its first version appears; with no usable secret,
    // verification still runs (for the code and the diagnosis) under the provider's own URL.
    let mut group_urls: Vec<usize> = Vec::with_capacity(1);
    for (url, _) in &usable {
        if !group_urls.contains(url) {
            group_urls.push(*url);
        }
    }
    if group_urls.is_empty() {
        match plan.default_url {
            Some(url) => group_urls.push(url),
            None => return Ok(Verdict::NoUrl),
        }
    }

    let mut first_rejection = None;
    let mut accepted: Vec<SecretCandidate<'_>> = Vec::with_capacity(usable.len());
    for group_url in group_urls {
        let Some(url) = plan.urls.get(group_url) else {
            continue;
        };
        accepted.clear();
        accepted.extend(
            usable
                .iter()
                .filter(|(url, _)| *url == group_url)
                .map(|(_, candidate)| *candidate),
        );
        let verifier = Verifier {
            url,
            accepted: &accepted,
            retired: &retired,
            tolerance,
        };
        match verifier.verify(request, now) {
            Ok(verified) => {
                let registration_id = plan.registration_of(verified.secret_version).cloned();
                return Ok(Verdict::Authentic {
                    verified,
                    registration_id,
                });
            }
            Err(rejection) => {
                first_rejection.get_or_insert(rejection);
            }
        }
    }
    Ok(first_rejection.map_or(Verdict::NoUrl, Verdict::Rejected))
}

fn secret_of(
    stored: &[(SecretVersion, WebhookSecret)],
    version: SecretVersion,
) -> Option<&WebhookSecret> {
    stored
        .iter()
        .find(|(stored, _)| *stored == version)
        .map(|(_, secret)| secret)
}
