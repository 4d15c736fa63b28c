//! Verifying a delivery against every accepted secret version of the provider, each under the
//! URL its registration was made for (never the request's `Host`).

use crate::secrets::{SecretVault, VaultError};
use paystate_domain::provider::Provider;
use paystate_domain::{RegistrationId, SecretVersion};
use paystate_vipps::verify::{Rejection, Verified, Verifier};
use paystate_vipps::{DeliveryRequest, RegisteredUrl, WebhookSecret};
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

/// The secrets of one registered URL.
struct UrlGroup {
    url: RegisteredUrl,
    secrets: Vec<(SecretVersion, WebhookSecret)>,
}

/// Verifies `request` for `provider` at `now`.
pub fn verify(
    provider: &Provider,
    vault: &SecretVault,
    request: &DeliveryRequest<'_>,
    now: OffsetDateTime,
    tolerance: Duration,
    grace: Duration,
) -> Result<Verdict, VaultError> {
    let grace = time::Duration::try_from(grace).unwrap_or(time::Duration::MAX);
    let accepted = provider.accepted_secret_versions(now, grace);
    let mut stored = vault.webhook_secrets(&provider.id)?;
    // Newest first, like `accepted`, so a retired secret is diagnosed by its latest version.
    stored.sort_by_key(|(version, _)| std::cmp::Reverse(*version));

    let default_url = provider
        .webhook_url()
        .ok()
        .and_then(|url| RegisteredUrl::parse(url.as_str()).ok());
    let mut groups: Vec<UrlGroup> = Vec::new();
    for version in &accepted {
        let Some(secret) = stored
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, s)| s.clone())
        else {
            tracing::warn!(provider = %provider.id, version = version.get(), "accepted secret version missing from the vault");
            continue;
        };
        let url = provider
            .live_registrations()
            .find(|registration| registration.secret_version == *version)
            .and_then(|registration| RegisteredUrl::parse(registration.url.as_str()).ok())
            .or_else(|| default_url.clone());
        let Some(url) = url else { continue };
        match groups.iter_mut().find(|group| group.url == url) {
            Some(group) => group.secrets.push((*version, secret)),
            None => groups.push(UrlGroup {
                url,
                secrets: vec![(*version, secret)],
            }),
        }
    }
    let retired: Vec<(SecretVersion, WebhookSecret)> = stored
        .into_iter()
        .filter(|(version, _)| !accepted.contains(version))
        .collect();
    let retired_refs: Vec<(SecretVersion, &WebhookSecret)> =
        retired.iter().map(|(v, s)| (*v, s)).collect();

    if groups.is_empty() {
        // No accepted secret: verification still runs (for the code and the diagnosis) with
        // none accepted, under the URL the provider would register.
        let Some(url) = default_url else {
            return Ok(Verdict::NoUrl);
        };
        groups.push(UrlGroup {
            url,
            secrets: Vec::new(),
        });
    }

    let mut first_rejection = None;
    for group in &groups {
        let accepted_refs: Vec<(SecretVersion, &WebhookSecret)> =
            group.secrets.iter().map(|(v, s)| (*v, s)).collect();
        let verifier = Verifier {
            url: &group.url,
            accepted: &accepted_refs,
            retired: &retired_refs,
            tolerance,
        };
        match verifier.verify(request, now) {
            Ok(verified) => {
                let registration_id = provider
                    .live_registrations()
                    .find(|registration| registration.secret_version == verified.secret_version)
                    .map(|registration| registration.registration_id.clone());
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
