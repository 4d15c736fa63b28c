//! Schema evolution on read: stored bytes stay as written; readers see the newest schema.

use crate::error::StoreError;
use crate::types::{Envelope, EnvelopeRef};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// Turns a payload of one schema version into the payload of the next version.
pub type UpcastFn = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// The upcasters of every event type, keyed by (type name, schema version they read).
///
/// On read, an event of type `t` at schema version `v` is passed through the upcaster
/// registered for `(t, v)`, which yields version `v + 1`, then through `(t, v + 1)`, and so on
/// until no upcaster is registered: that is the newest version.
#[derive(Clone, Default)]
pub struct Upcasters {
    by_type: HashMap<String, BTreeMap<u32, UpcastFn>>,
}

impl Upcasters {
    pub fn new() -> Upcasters {
        Upcasters::default()
    }

    /// Registers the step from `from_version` to `from_version + 1` for `event_type`,
    /// replacing any earlier registration of the same step.
    pub fn register(
        &mut self,
        event_type: impl Into<String>,
        from_version: u32,
        upcast: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> &mut Upcasters {
        self.by_type
            .entry(event_type.into())
            .or_default()
            .insert(from_version, Arc::new(upcast));
        self
    }

    /// Builder form of [`Upcasters::register`].
    pub fn with(
        mut self,
        event_type: impl Into<String>,
        from_version: u32,
        upcast: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Upcasters {
        self.register(event_type, from_version, upcast);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// Brings an envelope's payload and schema version to the newest registered version.
    pub fn upcast(&self, mut envelope: Envelope) -> Result<Envelope, StoreError> {
        let (version, payload) = self.upcast_payload(
            envelope.position.0,
            &envelope.event_type,
            envelope.schema_version,
            Cow::Borrowed(&envelope.payload),
        )?;
        if let Cow::Owned(payload) = payload {
            envelope.payload = payload;
            envelope.schema_version = version;
        }
        Ok(envelope)
    }

    /// As [`Upcasters::upcast`] for a borrowed envelope: its payload stays borrowed unless an
    /// upcaster applies.
    pub(crate) fn upcast_ref<'a>(
        &self,
        mut envelope: EnvelopeRef<'a>,
    ) -> Result<EnvelopeRef<'a>, StoreError> {
        if self.is_empty() {
            return Ok(envelope);
        }
        let (version, payload) = self.upcast_payload(
            envelope.position.0,
            envelope.event_type,
            envelope.schema_version,
            envelope.payload,
        )?;
        envelope.schema_version = version;
        envelope.payload = payload;
        Ok(envelope)
    }

    /// Runs the chain of steps for (`event_type`, `schema_version`); returns the newest
    /// version and its payload, which is owned exactly when at least one step ran.
    fn upcast_payload<'a>(
        &self,
        position: u64,
        event_type: &str,
        mut schema_version: u32,
        mut payload: Cow<'a, [u8]>,
    ) -> Result<(u32, Cow<'a, [u8]>), StoreError> {
        let Some(steps) = self.by_type.get(event_type) else {
            return Ok((schema_version, payload));
        };
        while let Some(step) = steps.get(&schema_version) {
            let next_version =
                schema_version
                    .checked_add(1)
                    .ok_or_else(|| StoreError::Corrupt {
                        position,
                        reason: "schema version overflows".into(),
                    })?;
            payload = Cow::Owned(step(&payload).map_err(|reason| StoreError::Corrupt {
                position,
                reason: format!(
                    "upcasting {event_type} from schema version {schema_version} failed: {reason}"
                ),
            })?);
            schema_version = next_version;
        }
        Ok((schema_version, payload))
    }
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps: Vec<(&str, u32)> = self
            .by_type
            .iter()
            .flat_map(|(name, versions)| versions.keys().map(move |v| (name.as_str(), *v)))
            .collect();
        steps.sort_unstable();
        f.debug_struct("Upcasters").field("steps", &steps).finish()
    }
}
