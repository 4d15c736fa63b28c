//! Which secret versions a delivery may be verified with.

use super::aggregate::Provider;
use crate::ids::SecretVersion;
use time::{Duration, OffsetDateTime};

/// How long a deleted registration's secret is still accepted by default: Vipps may have
/// signed deliveries with it just before the delete and retries them for days; ten minutes
/// covers in-flight deliveries without keeping a retired secret alive for long.
pub const DEFAULT_SECRET_GRACE: Duration = Duration::minutes(10);

impl Provider {
    /// The secret versions a delivery received at `now` may be verified with, newest first:
    /// every live registration's (current and older ones not yet deleted), a pending
    /// registration's (Vipps may deliver before `webhook_registered` is recorded), and those of
    /// registrations deleted less than `grace` before `now`.
    ///
    /// Anything not listed is rejected; if its signature matches a version not listed, the
    /// rejection says "secret out of sync".
    pub fn accepted_secret_versions(
        &self,
        now: OffsetDateTime,
        grace: Duration,
    ) -> Vec<SecretVersion> {
        let live = self
            .live_registrations()
            .map(|registration| registration.secret_version);
        let pending = self
            .pending
            .as_ref()
            .and_then(|pending| pending.secret_version);
        let in_grace = self
            .retired
            .iter()
            // A grace too large to add is unbounded, not a panic.
            .filter(|retired| {
                retired
                    .deleted_at
                    .checked_add(grace)
                    .is_none_or(|until| until > now)
            })
            .filter_map(|retired| retired.secret_version);
        let mut versions: Vec<SecretVersion> = live.chain(pending).chain(in_grace).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions.dedup();
        versions
    }

    /// Whether a delivery signed with `version` is accepted at `now`.
    pub fn accepts_secret_version(
        &self,
        version: SecretVersion,
        now: OffsetDateTime,
        grace: Duration,
    ) -> bool {
        self.accepted_secret_versions(now, grace).contains(&version)
    }
}
