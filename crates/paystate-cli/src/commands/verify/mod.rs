//! `paystate verify`: walk the hash chain, then re-verify every stored delivery's signature with
//! the secret version recorded for it.

mod delivery;

use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::Context;
use delivery::{reverify, DeliveryFault};
use indicatif::{ProgressBar, ProgressStyle};
use paystate_domain::events::{DomainEvent, WebhookReceived};
use paystate_domain::{ProviderId, SecretVersion};
use paystate_server::secrets::{MasterKey, SecretVault, MASTER_KEY_ENV, MASTER_KEY_FILE};
use paystate_store::{EventStore, Position, SledStore};
use paystate_vipps::WebhookSecret;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// How many envelopes are read per page while scanning for deliveries.
const PAGE: usize = 4096;

/// Check the log: its hash chain and every stored delivery's signature.
///
/// Walks the hash chain from position 1, then re-verifies every stored delivery
/// (`webhook_received`) against its raw body and the secret version recorded for it.
///
/// Webhook secrets are read from the data directory's encrypted vault with the master key
/// (PAYSTATE_MASTER_KEY, else {data}/master.key, as `paystate serve` does). A log imported into
/// another directory has no secrets there: use --chain-only, or verify where the secrets are.
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

    /// Check the hash chain only, not the delivery signatures (no secrets needed).
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
    /// Re-verified deliveries per (provider, secret version).
    verified: BTreeMap<(ProviderId, SecretVersion), u64>,
    first_failure: Option<Failure>,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<Outcome> {
    let store = args.data.open_existing()?;
    let result = check(&args, &store);
    offline::runtime()?.block_on(offline::close(&store))?;
    result
}

fn check(args: &VerifyArgs, store: &Arc<SledStore>) -> anyhow::Result<Outcome> {
    let chain = store.verify().context("walking the hash chain")?;
    println!("events:            {}", chain.events);
    println!("chain head:        position {}", chain.head);
    println!("chain head hash:   {}", hex::encode(chain.head_hash));
    let chain_failure = chain
        .first_bad
        .map(|(position, reason)| Failure { position, reason });

    let mut failures: Vec<(&str, Failure)> = Vec::new();
    if let Some(failure) = chain_failure {
        println!("hash chain:        BROKEN at position {}", failure.position);
        failures.push(("hash chain", failure));
    } else {
        println!("hash chain:        intact");
    }

    if args.chain_only {
        println!("deliveries:        not re-verified (--chain-only)");
    } else {
        // Records past a break cannot be trusted to decode, so the scan stops before it.
        let end = failures.first().map_or(chain.head, |(_, failure)| {
            Position(failure.position.0.saturating_sub(1))
        });
        let scan = scan_deliveries(store, &args.data.data, end)?;
        let total: u64 = scan.verified.values().sum();
        println!("deliveries:        {total} re-verified with their recorded secret versions");
        for ((provider, version), count) in &scan.verified {
            println!(
                "                   {provider} secret v{}: {count}",
                version.get()
            );
        }
        if let Some(failure) = scan.first_failure {
            println!("delivery:          FAILED at position {}", failure.position);
            failures.push(("delivery signature", failure));
        }
    }

    failures.sort_by_key(|(_, failure)| failure.position);
    match failures.first() {
        None => {
            println!("result:            OK");
            Ok(Outcome::Clean)
        }
        Some((what, failure)) => {
            println!(
                "result:            FAILED: first failing position {} ({what}): {}",
                failure.position, failure.reason
            );
            Ok(Outcome::ProblemFound)
        }
    }
}

/// Re-verifies every `webhook_received` up to `end`, stopping at the first failure.
fn scan_deliveries(
    store: &Arc<SledStore>,
    data_dir: &Path,
    end: Position,
) -> anyhow::Result<DeliveryScan> {
    let mut scan = DeliveryScan::default();
    let mut secrets = SecretCache::new(store.clone(), data_dir);
    let bar = ProgressBar::new(end.0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events scanned for deliveries")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut after = Position::START;
    'pages: while after < end {
        let page = store.read_all(after, PAGE)?;
        if page.is_empty() {
            break;
        }
        for envelope in page.iter().take_while(|envelope| envelope.position <= end) {
            after = envelope.position;
            if envelope.event_type != "webhook_received" {
                continue;
            }
            let fault = match DomainEvent::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.payload,
            ) {
                Ok(DomainEvent::WebhookReceived(receipt)) => match secrets.get(&receipt)? {
                    Ok(secret) => reverify(&receipt, &secret)
                        .map(|()| {
                            *scan
                                .verified
                                .entry((
                                    receipt.provider_id.clone(),
                                    receipt.verification.secret_version,
                                ))
                                .or_default() += 1;
                        })
                        .map_err(|fault: DeliveryFault| fault.to_string()),
                    Err(missing) => Err(missing),
                },
                Ok(_) => Err("the record is not a webhook receipt".to_owned()),
                Err(error) => Err(format!("the receipt cannot be read: {error}")),
            };
            if let Err(reason) = fault {
                scan.first_failure = Some(Failure {
                    position: envelope.position,
                    reason,
                });
                break 'pages;
            }
        }
        bar.set_position(after.0);
        if page.last().is_some_and(|last| last.position > end) {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(scan)
}

/// Secrets by (provider, version), read from the vault on first use. The vault is opened only
/// when the log has a delivery, so a log without any needs no master key.
struct SecretCache<'a> {
    store: Arc<SledStore>,
    data_dir: &'a Path,
    vault: Option<SecretVault>,
    secrets: HashMap<(ProviderId, SecretVersion), WebhookSecret>,
}

impl<'a> SecretCache<'a> {
    fn new(store: Arc<SledStore>, data_dir: &'a Path) -> SecretCache<'a> {
        SecretCache {
            store,
            data_dir,
            vault: None,
            secrets: HashMap::new(),
        }
    }

    /// The secret that should verify `receipt`: `Ok(Err(why))` when it is not available, which
    /// is a finding about that position; `Err` when the vault cannot be opened at all.
    fn get(&mut self, receipt: &WebhookReceived) -> anyhow::Result<Result<WebhookSecret, String>> {
        let key = (
            receipt.provider_id.clone(),
            receipt.verification.secret_version,
        );
        if let Some(secret) = self.secrets.get(&key) {
            return Ok(Ok(secret.clone()));
        }
        let vault = match &self.vault {
            Some(vault) => vault,
            None => self
                .vault
                .insert(open_vault(self.store.clone(), self.data_dir)?),
        };
        match vault.webhook_secret(&key.0, key.1) {
            Ok(Some(secret)) => {
                self.secrets.insert(key, secret.clone());
                Ok(Ok(secret))
            }
            Ok(None) => Ok(Err(format!(
                "secret version {} of provider {} is not in this data directory's vault (an \
                 imported log carries no secrets; see --chain-only)",
                key.1.get(),
                key.0
            ))),
            Err(error) => Ok(Err(format!(
                "secret version {} of provider {} cannot be read from the vault: {error}",
                key.1.get(),
                key.0
            ))),
        }
    }
}

/// Opens the vault read-side with the master key the server uses, without ever generating one.
fn open_vault(store: Arc<SledStore>, data_dir: &Path) -> anyhow::Result<SecretVault> {
    let from_env = std::env::var(MASTER_KEY_ENV)
        .ok()
        .map(Zeroizing::new)
        .filter(|value| !value.trim().is_empty());
    if from_env.is_none() && !data_dir.join(MASTER_KEY_FILE).is_file() {
        anyhow::bail!(
            "cannot re-verify deliveries: no master key ({MASTER_KEY_ENV} is not set and {} does \
             not exist); set it, or pass --chain-only",
            data_dir.join(MASTER_KEY_FILE).display()
        );
    }
    let (master_key, _) = MasterKey::resolve(from_env.as_deref().map(String::as_str), data_dir)
        .context("reading the master key")?;
    SecretVault::open(store, master_key).context("opening the secret vault")
}
