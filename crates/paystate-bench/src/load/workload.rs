//! The webhook mix: what a merchant's stream of Vipps deliveries looks like.
//!
//! Each connection walks its own payments through `CREATED`, `AUTHORIZED` and `CAPTURED`;
//! after every [`WebhookMix::duplicate_every`]-th payment it sends that payment's `AUTHORIZED`
//! event again, byte for byte, as Vipps does after a lost 200. The bodies are compact JSON in
//! the key order of real traffic (VIPPS.md §4), and the sequence is a pure function of
//! `(connection, sequence number)`, so a run can be enumerated afterwards (the query benchmark
//! asks for payments that the ingestion benchmark created).

/// One delivery of the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub reference: String,
    pub step: Step,
    /// A repeat of an event already sent.
    pub duplicate: bool,
    pub body: Vec<u8>,
}

/// The operation a delivery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Created,
    Authorized,
    Captured,
}

impl Step {
    const ORDER: [Step; 3] = [Step::Created, Step::Authorized, Step::Captured];

    fn name(self) -> &'static str {
        match self {
            Step::Created => "CREATED",
            Step::Authorized => "AUTHORIZED",
            Step::Captured => "CAPTURED",
        }
    }
}

/// Generates the deliveries of one load run.
#[derive(Debug, Clone)]
pub struct WebhookMix {
    msn: String,
    /// Distinguishes the payments of this run from those of earlier runs on the same server.
    run: String,
    duplicate_every: u64,
}

impl WebhookMix {
    /// A mix for merchant `msn`; `run` (letters, digits, `-`) prefixes every reference.
    pub fn new(msn: impl Into<String>, run: impl Into<String>) -> WebhookMix {
        WebhookMix {
            msn: msn.into(),
            run: run.into(),
            duplicate_every: 8,
        }
    }

    /// One payment in this many is delivered with a duplicate.
    pub fn duplicate_every(&self) -> u64 {
        self.duplicate_every
    }

    fn block_len(&self) -> u64 {
        3 * self.duplicate_every + 1
    }

    /// The reference of payment `payment` of connection `connection`.
    pub fn reference(&self, connection: usize, payment: u64) -> String {
        format!("{}-c{connection}-p{payment}", self.run)
    }

    /// How many payments connection's first `sent` deliveries created.
    pub fn payments_created(&self, sent: u64) -> u64 {
        let full_blocks = sent / self.block_len();
        let rest = (sent % self.block_len()).min(3 * self.duplicate_every);
        full_blocks * self.duplicate_every + rest.div_ceil(3)
    }

    /// The `sequence`-th delivery of `connection`.
    pub fn delivery(&self, connection: usize, sequence: u64) -> Delivery {
        let block = sequence / self.block_len();
        let offset = sequence % self.block_len();
        let (payment, step, duplicate) = if offset < 3 * self.duplicate_every {
            let payment = block * self.duplicate_every + offset / 3;
            let step = Step::ORDER[usize::try_from(offset % 3).unwrap_or(0)];
            (payment, step, false)
        } else {
            let payment = block * self.duplicate_every + self.duplicate_every - 1;
            (payment, Step::Authorized, true)
        };
        let reference = self.reference(connection, payment);
        let body = self.body(&reference, payment, step);
        Delivery {
            reference,
            step,
            duplicate,
            body,
        }
    }

    fn body(&self, reference: &str, payment: u64, step: Step) -> Vec<u8> {
        // Amounts vary a little so that rows differ; minor units.
        let amount = 10_000 + (payment % 97) * 100;
        let psp_reference = format!("{reference}-{}", step.name().to_ascii_lowercase());
        let millis = payment % 1000;
        format!(
            concat!(
                r#"{{"msn":"{msn}","reference":"{reference}","pspReference":"{psp}","name":"{name}","#,
                r#""amount":{{"currency":"NOK","value":{amount}}},"timestamp":"2025-01-14T09:30:01.{millis:03}Z","#,
                r#""idempotencyKey":"{psp}-key","success":true}}"#
            ),
            msn = self.msn,
            reference = reference,
            psp = psp_reference,
            name = step.name(),
            amount = amount,
            millis = millis,
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix() -> WebhookMix {
        WebhookMix::new("123456", "bench-r1")
    }

    #[test]
    fn a_payment_goes_created_authorized_captured() {
        let mix = mix();
        let steps: Vec<_> = (0..3).map(|s| mix.delivery(0, s)).collect();
        assert!(steps.iter().all(|d| d.reference == "bench-r1-c0-p0"));
        assert_eq!(
            steps.iter().map(|d| d.step).collect::<Vec<_>>(),
            [Step::Created, Step::Authorized, Step::Captured]
        );
        assert_eq!(mix.delivery(0, 3).reference, "bench-r1-c0-p1");
    }

    #[test]
    fn every_block_ends_with_an_identical_repeat_of_an_authorization() {
        let mix = mix();
        let block = 3 * mix.duplicate_every() + 1;
        let repeat = mix.delivery(2, block - 1);
        assert!(repeat.duplicate);
        let original = (0..block - 1)
            .map(|s| mix.delivery(2, s))
            .find(|d| d.reference == repeat.reference && d.step == Step::Authorized)
            .unwrap();
        assert_eq!(original.body, repeat.body);
        assert!(!original.duplicate);
    }

    #[test]
    fn bodies_are_valid_json_with_vipps_fields_and_valid_references() {
        let mix = mix();
        let delivery = mix.delivery(63, 1_000_001);
        let json: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(json["msn"], "123456");
        assert_eq!(json["reference"], delivery.reference.as_str());
        assert_eq!(json["amount"]["currency"], "NOK");
        assert!(json["amount"]["value"].as_u64().unwrap() > 0);
        assert!(paystate_domain::Reference::parse(&delivery.reference).is_ok());
        time::OffsetDateTime::parse(
            json["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
    }

    #[test]
    fn payments_created_counts_what_the_deliveries_named() {
        let mix = mix();
        for sent in [0, 1, 2, 3, 4, 24, 25, 26, 100, 1000] {
            let distinct: std::collections::BTreeSet<_> =
                (0..sent).map(|s| mix.delivery(0, s).reference).collect();
            assert_eq!(
                mix.payments_created(sent),
                distinct.len() as u64,
                "sent {sent}"
            );
        }
    }
}
