//! `paystate audit`: the timeline of a payment or a provider, each fact with its position,
//! recorded time and what it changed.
//!
//! - `changes`: the field-by-field difference a fact made to the view.
//! - `timeline`: reading a stream and folding it fact by fact.
//! - `render`: table and JSON output.

pub mod changes;
mod render;
mod timeline;

use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::Context;
use paystate_domain::{ProviderId, Reference};
use paystate_store::EventStore;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use timeline::Cutoff;

/// Show the timeline of a payment or a provider: each fact, when, and what it changed.
///
/// Every recorded fact with its position, the time it was recorded, what it says and what it
/// changed (e.g. "captured 0.00 -> 40.00 NOK"), followed by the resulting view.
///
/// Examples:
///   paystate audit payment vipps-test acme-order-1001
///   paystate audit payment vipps-test acme-order-1001 --at 42
///   paystate audit payment vipps-test acme-order-1001 --as-of 2026-11-28T09:30:00Z
///   paystate audit provider vipps-test --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
pub struct AuditArgs {
    #[command(subcommand)]
    subject: Subject,
}

#[derive(Debug, clap::Subcommand)]
enum Subject {
    /// Every fact about one payment: deliveries, payment events, duplicates, anomalies.
    ///
    /// Example:
    ///   paystate audit payment vipps-test acme-order-1001 --at 42
    #[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
    Payment {
        /// The provider the payment came through, e.g. vipps-test.
        provider_id: String,
        /// The payment's reference, e.g. acme-order-1001.
        reference: String,
        #[command(flatten)]
        options: Options,
    },
    /// Every fact of one provider's own stream: configuration, webhook registrations,
    /// deletions and rejected deliveries.
    ///
    /// Example:
    ///   paystate audit provider vipps-test --json
    #[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
    Provider {
        /// The provider id, e.g. vipps-test.
        id: String,
        #[command(flatten)]
        options: Options,
    },
}

#[derive(Debug, clap::Args)]
struct Options {
    #[command(flatten)]
    data: DataDirArg,

    /// Print JSON (one document: subject, entries with changes and data, resulting view).
    #[arg(long)]
    json: bool,

    /// Stop at this global log position: the timeline and view as they were known then.
    #[arg(long, value_name = "POSITION")]
    at: Option<u64>,

    /// Stop at this recorded time (RFC 3339, e.g. 2026-11-28T09:30:00Z): what was known then.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "at")]
    as_of: Option<OffsetDateTime>,
}

impl Options {
    fn cutoff(&self) -> Cutoff {
        Cutoff {
            position: self.at,
            time: self.as_of,
        }
    }
}

fn parse_time(input: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(input, &Rfc3339)
        .map_err(|error| format!("not an RFC 3339 time ({error}), e.g. 2026-11-28T09:30:00Z"))
}

/// A validated audit subject.
enum Target {
    Payment(ProviderId, Reference),
    Provider(ProviderId),
}

pub fn run(args: AuditArgs) -> anyhow::Result<Outcome> {
    let (target, options) = match &args.subject {
        Subject::Payment {
            provider_id,
            reference,
            options,
        } => {
            let reference = Reference::parse(reference)
                .with_context(|| format!("{reference:?} is not a valid payment reference"))?;
            (
                Target::Payment(parse_provider(provider_id)?, reference),
                options,
            )
        }
        Subject::Provider { id, options } => (Target::Provider(parse_provider(id)?), options),
    };
    let store = options.data.open_existing()?;
    let head = store.head();
    let timeline = match &target {
        Target::Payment(provider, reference) => {
            timeline::payment(store.as_ref(), provider, reference, options.cutoff())
        }
        Target::Provider(provider) => {
            timeline::provider(store.as_ref(), provider, options.cutoff())
        }
    };
    offline::runtime()?.block_on(offline::close(&store))?;
    let head = head?;
    if let Some(at) = options.at.filter(|at| *at > head.0) {
        anyhow::bail!("--at {at} is past the end of the log: its last position is {head}");
    }
    let timeline = timeline?;
    if timeline.entries.is_empty() {
        let check = match (&target, options.at.is_some() || options.as_of.is_some()) {
            (Target::Payment(..), false) => "check the provider id and the reference",
            (Target::Provider(_), false) => "check the provider id",
            (_, true) => "check the ids, or ask about a later point",
        };
        anyhow::bail!(
            "no facts recorded for {} (stream {}{}); {check}",
            timeline.subject,
            timeline.stream,
            render::cutoff_words(&timeline)
        );
    }
    if options.json {
        crate::say!("{}", render::json(&timeline))?;
    } else {
        crate::commands::output::text(&render::table(&timeline))?;
    }
    Ok(Outcome::Clean)
}

fn parse_provider(id: &str) -> anyhow::Result<ProviderId> {
    ProviderId::parse(id).with_context(|| format!("{id:?} is not a valid provider id"))
}

/// The timeline of a payment in an open store, as a table (for `demo`).
pub fn payment_table(
    store: &dyn EventStore,
    provider: &ProviderId,
    reference: &Reference,
) -> anyhow::Result<String> {
    Ok(render::table(&timeline::payment(
        store,
        provider,
        reference,
        Cutoff::default(),
    )?))
}
