//! `paystate verify`: walk the hash chain, then re-verify every stored delivery's signature with
//! the secret version recorded for it.

mod delivery;
mod facts;
mod secrets;

use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::Context;
use delivery::{reverify, DeliveryFault};
use paystate_domain::events::{
    DecodeError, DomainEvent, PaymentEventRecorded, StoredEvent, WebhookAnomaly, WebhookDuplicate,
    WebhookReceived,
};
use paystate_domain::{ProviderId, SecretVersion};
use paystate_store::{EventStore, Position, SledStore, StoreError};
use secrets::SecretCache;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// How many envelopes are read per page while scanning for deliveries.
const PAGE: usize = 4096;

/// Check the log: its hash chain, every stored delivery's signature, and every payment fact
/// against the delivery it was read from.
///
/// Walks the hash chain from position 1, then re-verifies every stored delivery
/// (`webhook_received`) against its raw body and the secret version recorded for it, and reads
/// each webhook's body again to check that the payment fact recorded with it says the same.
/// Keep the printed chain head hash elsewhere: a later run whose chain passes through it
/// proves the history up to it unchanged.
///
/// Webhook secrets are read from the data directory's encrypted vault with the master key
/// (PAYSTATE_MASTER_KEY, else {data}/master.key, as `paystate serve` does). A log imported into
/// another directory has no secrets there: use --chain-only (everything but the signatures),
/// or verify where the secrets are.
/// Prints events, deliveries re-verified and the chain head hash; on a problem, exits 1 naming
/// the first failing position and why.
///
/// Examples:
///   paystate verify --data ./paystate-data
///   paystate verify --chain-only --data ./restored
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataDirArg,

    /// Check the hash chain and the payment facts against the stored deliveries, not the
    /// delivery signatures (no secrets needed).
    #[arg(long)]
    chain_only: bool,
}

/// A position that failed, and why.
#[derive(Debug)]
struct Failure {
    position: Position,
    reason: String,
}

/// What the delivery scan found.
#[derive(Debug, Default)]
struct DeliveryScan {
    /// Payment facts from webhooks found to say what their signed delivery says.
    facts: u64,
    /// Payment facts that do not.
    facts_failed: u64,
    first_fact_failure: Option<Failure>,
    /// Re-verified deliveries per (provider, secret version).
    verified: BTreeMap<(ProviderId, SecretVersion), u64>,
    /// Deliveries that did not re-verify.
    failed: u64,
    first_failure: Option<Failure>,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<Outcome> {
    let store = match args.data.open_existing() {
        Ok(store) => store,
        Err(error) => {
            let damaged = error.chain().find_map(|cause| match cause.downcast_ref() {
                Some(StoreError::Damaged { reason, .. }) => Some(reason.clone()),
                _ => None,
            });
            let Some(reason) = damaged else {
                return Err(error);
            };
            crate::say!("result:            FAILED: the store cannot be opened: {reason}")?;
            return Ok(Outcome::ProblemFound);
        }
    };
    let result = check(&args, &store);
    offline::runtime()?.block_on(offline::close(&store))?;
    result
}

fn check(args: &VerifyArgs, store: &Arc<SledStore>) -> anyhow::Result<Outcome> {
    let chain = store.verify().context("walking the hash chain")?;
    crate::say!("events:            {}", chain.events)?;
    crate::say!("chain head:        position {}", chain.head)?;
    crate::say!("chain head hash:   {}", hex::encode(chain.head_hash))?;
    let chain_failure = chain
        .first_bad
        .map(|(position, reason)| Failure { position, reason });

    let mut failures: Vec<(&str, Failure)> = Vec::new();
    // A log cut short below the head recorded beside it, or not readable to its end.
    if let Some(reason) = store.refusal() {
        crate::say!("store:             DAMAGED: {reason}")?;
        failures.push((
            "store",
            Failure {
                position: chain.head.next(),
                reason,
            },
        ));
    }
    if let Some(failure) = chain_failure {
        crate::say!("hash chain:        BROKEN at position {}", failure.position)?;
        failures.push(("hash chain", failure));
    } else {
        crate::say!("hash chain:        intact")?;
    }

    // Records past a break cannot be trusted to decode, so the scan stops before it.
    let end = failures.first().map_or(chain.head, |(_, failure)| {
        Position(failure.position.0.saturating_sub(1))
    });
    let signatures = !args.chain_only;
    let scan = scan_deliveries(store, &args.data.data, end, signatures)?;
    if signatures {
        let total: u64 = scan.verified.values().sum();
        crate::say!("deliveries:        {total} re-verified with their recorded secret versions")?;
        for ((provider, version), count) in &scan.verified {
            crate::say!(
                "                   {provider} secret v{}: {count}",
                version.get()
            )?;
        }
        if let Some(failure) = scan.first_failure {
            crate::say!(
                "                   {} FAILED, the first at position {}",
                scan.failed,
                failure.position
            )?;
            failures.push(("delivery signature", failure));
        }
    } else {
        crate::say!("deliveries:        signatures not re-verified (--chain-only)")?;
    }
    crate::say!(
        "payment facts:     {} match the delivery bodies they were read from",
        scan.facts
    )?;
    if let Some(failure) = scan.first_fact_failure {
        crate::say!(
            "                   {} FAILED, the first at position {}",
            scan.facts_failed,
            failure.position
        )?;
        failures.push(("payment fact", failure));
    }

    failures.sort_by_key(|(_, failure)| failure.position);
    match failures.first() {
        None => {
            crate::say!("result:            OK")?;
            Ok(Outcome::Clean)
        }
        Some((what, failure)) => {
            crate::say!(
                "result:            FAILED: first failing position {} ({what}): {}",
                failure.position,
                failure.reason
            )?;
            // The first failure of every other kind too: a missing secret at one position
            // must not hide an edited amount at another.
            for (what, failure) in &failures[1..] {
                crate::say!(
                    "                   and position {} ({what}): {}",
                    failure.position,
                    failure.reason
                )?;
            }
            Ok(Outcome::ProblemFound)
        }
    }
}

/// Checks every payment fact up to `end` against the delivery it was read from and, with
/// `signatures`, re-verifies every `webhook_received`, counting failures and keeping the first.
fn scan_deliveries(
    store: &Arc<SledStore>,
    data_dir: &Path,
    end: Position,
    signatures: bool,
) -> anyhow::Result<DeliveryScan> {
    let mut scan = DeliveryScan::default();
    let mut secrets = SecretCache::new(store.clone(), data_dir);
    let bar = super::progress::events_bar(end.0, "events scanned for deliveries");
    let mut after = Position::START;
    // The latest receipt, for the fact recorded with it (in the same append, right after it).
    let mut last_receipt: Option<(Position, WebhookReceived)> = None;
    while after < end {
        let page = store.read_all(after, PAGE)?;
        if page.is_empty() {
            break;
        }
        for envelope in page.iter().take_while(|envelope| envelope.position <= end) {
            after = envelope.position;
            // Every delivery is appended with its fact or its anomaly right after it.
            if let Some((receipt_at, _)) = &last_receipt {
                if receipt_at.next() == envelope.position
                    && envelope.event_type != PaymentEventRecorded::TYPE_NAME
                    && envelope.event_type != WebhookAnomaly::TYPE_NAME
                {
                    scan.facts_failed += 1;
                    scan.first_fact_failure.get_or_insert(Failure {
                        position: envelope.position,
                        reason: format!(
                            "the delivery at position {} has no fact or anomaly recorded with it (found {})",
                            receipt_at.0, envelope.event_type
                        ),
                    });
                }
            }
            let wanted = [
                WebhookReceived::TYPE_NAME,
                WebhookDuplicate::TYPE_NAME,
                PaymentEventRecorded::TYPE_NAME,
            ];
            if !wanted.contains(&envelope.event_type.as_str()) {
                continue;
            }
            let event = DomainEvent::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.payload,
            );
            if envelope.event_type == PaymentEventRecorded::TYPE_NAME {
                let checked = match &event {
                    Ok(DomainEvent::PaymentEventRecorded(fact)) => {
                        facts::check(envelope.position, fact, last_receipt.as_ref())
                    }
                    _ => Err("the payment fact cannot be read".to_owned()),
                };
                match checked {
                    Ok(()) => scan.facts += 1,
                    Err(reason) => {
                        scan.facts_failed += 1;
                        scan.first_fact_failure.get_or_insert(Failure {
                            position: envelope.position,
                            reason,
                        });
                    }
                }
                continue;
            }
            if !signatures {
                if let Ok(DomainEvent::WebhookReceived(receipt)) = event {
                    last_receipt = Some((envelope.position, receipt));
                }
                continue;
            }
            let Some(outcome) = check_delivery(event, &mut secrets, |receipt| {
                last_receipt = Some((envelope.position, receipt.clone()));
            })?
            else {
                continue;
            };
            match outcome {
                Ok(key) => *scan.verified.entry(key).or_default() += 1,
                Err(reason) => {
                    scan.failed += 1;
                    scan.first_failure.get_or_insert(Failure {
                        position: envelope.position,
                        reason,
                    });
                }
            }
        }
        bar.set_position(after.0);
    }
    if let Some((receipt_at, _)) = &last_receipt {
        if *receipt_at == end {
            scan.facts_failed += 1;
            scan.first_fact_failure.get_or_insert(Failure {
                position: *receipt_at,
                reason: "the log ends with a delivery that has no fact or anomaly recorded with it"
                    .to_owned(),
            });
        }
    }
    bar.finish_and_clear();
    Ok(scan)
}

/// Re-verifies one stored delivery (a receipt, or the delivery kept in a duplicate that said
/// something else): its (provider, secret version) when it verifies, else why not; `None` for
/// a duplicate that kept no delivery.
fn check_delivery(
    event: Result<DomainEvent, DecodeError>,
    secrets: &mut SecretCache<'_>,
    mut keep_receipt: impl FnMut(&WebhookReceived),
) -> anyhow::Result<Option<Result<(ProviderId, SecretVersion), String>>> {
    let receipt = match event {
        Ok(DomainEvent::WebhookReceived(receipt)) => {
            keep_receipt(&receipt);
            receipt
        }
        Ok(DomainEvent::WebhookDuplicate(duplicate)) => match duplicate.conflict {
            Some(copy) => copy.receipt,
            None => return Ok(None),
        },
        Ok(_) => return Ok(Some(Err("the record is not a webhook receipt".to_owned()))),
        Err(error) => return Ok(Some(Err(format!("the receipt cannot be read: {error}")))),
    };
    let version = receipt.verification.secret_version;
    let secret = match secrets.get(&receipt.provider_id, version)? {
        Ok(secret) => secret,
        Err(missing) => return Ok(Some(Err(missing))),
    };
    Ok(Some(
        reverify(&receipt, &secret)
            .map(|()| (receipt.provider_id.clone(), version))
            .map_err(|fault: DeliveryFault| fault.to_string()),
    ))
}
