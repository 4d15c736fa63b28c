//! `paystate demo`: the server and the Vipps simulator in one process, a scripted story through
//! their HTTP APIs, then the resulting views and two audit timelines.
//!
//! - `stage`: starting both on free 127.0.0.1 ports, the server on a real data directory.
//! - `api`: the client of paystate's admin and query API, and waiting for background effects.
//! - `story`: the steps, one function each.
//! - `merchant`: the merchant's calls to the ePayment API at the simulator.
//! - `forgery`: requests that are not deliveries from Vipps.
//! - `views`: reading and printing paystate's views.

mod api;
mod forgery;
mod merchant;
mod stage;
mod story;
mod views;

use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::{anyhow, bail, Context};
use paystate_domain::{ProviderId, Reference};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the demo waits for its server's leftover tasks when it shuts its runtime down.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(10);
/// How long the demo waits for its stopped server's store to be released before it reads it.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Run the server and a Vipps simulator in one process and tell a scripted story.
///
/// A Vipps simulator and the paystate server start in this process on free 127.0.0.1 ports. A
/// provider is created and enabled, its webhook registered automatically; payments are created,
/// authorized, partly captured and refunded; Vipps delivers a webhook twice and two out of
/// order; forged webhooks are rejected with their diagnosis; the webhook secret is rotated.
/// Then the provider view, the payments and the audit timelines of two payments are printed.
///
/// The data directory is left in place for the other commands (`audit`, `verify`, `replay`,
/// `export`, `serve`); the demo refuses a directory that already holds a store. Needs no
/// network beyond loopback. Takes a few seconds.
///
/// Examples:
///   paystate demo
///   paystate demo --data /tmp/paystate-demo
#[derive(Debug, clap::Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Exit codes: 0 the story ran to the end; 2 it could not (e.g. the data directory already holds a store)."
)]
pub struct DemoArgs {
    /// Where the demo's server keeps its data; must not hold a store yet.
    #[arg(long, default_value = "./paystate-demo-data")]
    data: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<Outcome> {
    let store_dir = paystate_server::store::store_path(&args.data);
    if store_dir.exists() {
        bail!(
            "{} already holds a store (from an earlier demo?); remove the directory or pass \
             another --data",
            args.data.display()
        );
    }
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let told = runtime.block_on(async {
        let stage = stage::Stage::start(&args.data).await?;
        let story = async {
            crate::say!(
                "paystate server at {}, Vipps simulator at {}, data in {}",
                stage.api.base(),
                stage.sim.base_url(),
                args.data.display()
            )?;
            story::tell(&stage).await
        };
        let told = tokio::select! {
            told = story => told,
            () = interrupted() => Err(anyhow!("the demo was interrupted")),
        };
        let finish = async move {
            if told.is_err() {
                // However the story ended, the provider must not stay enabled (see `disable`).
                story::disable_after_failure(&stage.api).await;
            }
            let stopped = stage.stop().await;
            told.and(stopped)
        };
        // Once Ctrl-C is listened for, it no longer ends the process by itself: a second one
        // during the clean-up does, at once.
        tokio::select! {
            finished = finish => finished,
            () = interrupted() => {
                eprintln!("interrupted again: leaving at once; the demo's provider may still be enabled");
                std::process::exit(130);
            }
        }
    });
    // Whatever the server left running (a blocking task, a connection) goes with the runtime,
    // whether or not the story finished.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    told.with_context(|| {
        format!(
            "the demo did not finish; remove {} before running it again",
            args.data.display()
        )
    })?;

    // The server has stopped and released the store: read it as the offline commands do.
    let data = DataDirArg {
        data: args.data.clone(),
    };
    let store = data.open_existing_within(RELEASE_WAIT)?;
    let provider = ProviderId::parse(story::PROVIDER)?;
    let tables = [story::AUDITED, story::SECOND].map(|reference| {
        let reference = Reference::parse(reference)?;
        super::audit::payment_table(store.as_ref(), &provider, &reference)
    });
    offline::runtime()?.block_on(offline::close(&store))?;
    let [first, second] = tables;
    crate::say!(
        "\n== Audit timeline (paystate audit payment {} {}): created, authorized, partly captured, partly refunded ==",
        story::PROVIDER,
        story::AUDITED
    )?;
    crate::commands::output::text(&first?)?;
    crate::say!(
        "\n== Audit timeline (paystate audit payment {} {}): a duplicate delivery, then a delivery under the rotated secret ==",
        story::PROVIDER,
        story::SECOND
    )?;
    crate::commands::output::text(&second?)?;

    let dir = args.data.display();
    crate::say!("\n== Next ==")?;
    crate::say!(
        "The demo took {:.1} s and left its data in {dir}. Explore it:",
        started.elapsed().as_secs_f64()
    )?;
    crate::say!(
        "  paystate audit payment {} acme-order-1003 --data {dir}",
        story::PROVIDER
    )?;
    crate::say!("  paystate audit provider {} --data {dir}", story::PROVIDER)?;
    crate::say!("  paystate verify --data {dir}")?;
    crate::say!("  paystate replay --verify --data {dir}")?;
    crate::say!("  paystate export --data {dir} > log.jsonl")?;
    crate::say!("  paystate serve --data {dir}    (admin token in {dir}/admin-token)")?;
    Ok(Outcome::Clean)
}

/// Resolves on Ctrl-C (SIGINT); never, if it cannot be listened for.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
