//! The registration journal: what the reactor registered at Vipps, written to a side tree right
//! after Vipps answers and before the `webhook_registered` fact is appended.
//!
//! It makes a crash between "Vipps created the registration" and "the log recorded it"
//! recoverable without a second registration: on the next attempt the reactor finds the
//! registration in Vipps' list, its id here and its secret in the vault, and records it
//! (adoption) instead of registering again. It also remembers the environment and credentials
//! each registration was made with, so a registration superseded by an environment or
//! credentials change is deleted where it lives. Nothing here is secret.

use paystate_domain::{
    Environment, Fingerprint, HttpUrl, ProviderId, RegistrationId, SecretVersion, WebhookEventType,
};
use paystate_store::{EventStore, StoreError};
use serde::{Deserialize, Serialize};

/// The side-tree namespace of the journal.
pub const JOURNAL_NAMESPACE: &str = "registration-journal";

/// One registration made at Vipps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub registration_id: RegistrationId,
    pub secret_version: SecretVersion,
    pub url: HttpUrl,
    pub events: Vec<WebhookEventType>,
    /// Where the registration lives.
    pub environment: Environment,
    /// The credentials it was made with (their fingerprint; the credentials are in the vault).
    pub credentials_fingerprint: Fingerprint,
}

fn key(provider: &ProviderId, version: SecretVersion) -> Vec<u8> {
    format!("{provider}/{:010}", version.get()).into_bytes()
}

/// Records `entry` for `provider`, durably.
pub fn put(
    store: &dyn EventStore,
    provider: &ProviderId,
    entry: &JournalEntry,
) -> Result<(), StoreError> {
    let value =
        serde_json::to_vec(entry).map_err(|error| StoreError::Invalid(error.to_string()))?;
    store.side_put(
        JOURNAL_NAMESPACE,
        &key(provider, entry.secret_version),
        &value,
    )
}

/// The entry of `provider`'s registration with secret `version`, if the reactor made one.
/// An unreadable entry counts as absent: the journal only ever saves work.
pub fn get(
    store: &dyn EventStore,
    provider: &ProviderId,
    version: SecretVersion,
) -> Result<Option<JournalEntry>, StoreError> {
    Ok(store
        .side_get(JOURNAL_NAMESPACE, &key(provider, version))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Every entry of `provider`, oldest version first.
pub fn entries(
    store: &dyn EventStore,
    provider: &ProviderId,
) -> Result<Vec<JournalEntry>, StoreError> {
    let prefix = format!("{provider}/");
    Ok(store
        .side_scan(JOURNAL_NAMESPACE, prefix.as_bytes())?
        .into_iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paystate_store::MemoryStore;

    fn entry(version: u32, id: &str) -> JournalEntry {
        JournalEntry {
            registration_id: RegistrationId::parse(id).unwrap(),
            secret_version: SecretVersion::new(version).unwrap(),
            url: HttpUrl::parse("https://pay.example.no/webhooks/vipps/p").unwrap(),
            events: WebhookEventType::all_epayment(),
            environment: Environment::Test,
            credentials_fingerprint: Fingerprint::parse("00ff").unwrap(),
        }
    }

    #[test]
    fn entries_round_trip_per_provider_in_version_order() {
        let store = MemoryStore::new();
        let p = ProviderId::parse("p").unwrap();
        let p2 = ProviderId::parse("p2").unwrap();
        put(&store, &p, &entry(10, "r10")).unwrap();
        put(&store, &p, &entry(2, "r2")).unwrap();
        put(&store, &p2, &entry(1, "other")).unwrap();
        assert_eq!(
            get(&store, &p, SecretVersion::new(2).unwrap()).unwrap(),
            Some(entry(2, "r2"))
        );
        assert_eq!(
            get(&store, &p, SecretVersion::new(3).unwrap()).unwrap(),
            None
        );
        let versions: Vec<u32> = entries(&store, &p)
            .unwrap()
            .iter()
            .map(|e| e.secret_version.get())
            .collect();
        assert_eq!(versions, vec![2, 10]);
    }
}
