//! Times a rebuild of the projections over a sled log, for A/B comparisons of the engine.
//!
//! - `replay_timing grow DIR WEBHOOKS`: appends a log shaped like the benchmark's traffic (each
//!   payment CREATED, AUTHORIZED, CAPTURED, one in eight AUTHORIZED delivered twice), each
//!   delivery a `webhook_received` receipt and its payment fact, from 64 concurrent appenders.
//! - `replay_timing time DIR [ROUNDS]`: times `rebuild` and a bare read of the log.
//! - `replay_timing bench DIR [ROUNDS]`: as the benchmark measures it: `rebuild` on a freshly
//!   opened store, then a raw iteration over the events tree of a freshly opened sled, and the
//!   ratio of the two.
//! - `replay_timing rebuild DIR`: times `rebuild` alone (for a profiler).
//! - `replay_timing load DIR`: times loading the persisted projections (persisting a rebuild
//!   first when there are none) and listing every payment, with the peak RSS.

use paystate_domain::events::{
    AuthorizationHeader, DomainEvent, FactSource, PaymentEventRecorded, ProviderCreated,
    SignedHeaders, VerificationSummary, WebhookDuplicate, WebhookReceived,
};
use paystate_domain::{
    streams, Amount, Currency, Environment, Fingerprint, HttpUrl, Msn, PaymentEventName,
    ProviderId, ProviderKind, PspReference, Reference, SecretVersion, WebhookEventType,
};
use paystate_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, SledStore, StreamId,
};
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

/// The allocator of the `paystate` and `paystate-bench` binaries, so figures compare.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["grow", dir, webhooks] => grow(dir, webhooks.parse()?),
        ["time", dir] => time(dir, 1),
        ["time", dir, rounds] => time(dir, rounds.parse()?),
        ["load", dir] => load(dir),
        ["bench", dir] => bench(dir, 1),
        ["bench", dir, rounds] => bench(dir, rounds.parse()?),
        ["rebuild", dir] => {
            let store = SledStore::open(dir)?;
            let started = Instant::now();
            let projections = paystate_projections::rebuild(&store)?;
            let seconds = started.elapsed().as_secs_f64();
            let events = projections.applied().0 as f64;
            println!("rebuild {:.0} events/s ({seconds:.2} s)", events / seconds);
            Ok(())
        }
        _ => Err(
            "usage: replay_timing grow DIR WEBHOOKS | time DIR [ROUNDS] | bench DIR [ROUNDS] | rebuild DIR | load DIR"
                .into(),
        ),
    }
}

fn time(dir: &str, rounds: usize) -> Result<(), Failure> {
    let store = SledStore::open(dir)?;
    let head = store.head()?;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut after = Position(0);
        loop {
            let page = store.read_all(after, 4096)?;
            let Some(last) = page.last() else { break };
            after = last.position;
        }
        let read = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut after = Position(0);
        let mut bytes = 0usize;
        loop {
            let last =
                store.scan_all(after, 4096, &mut |envelope| bytes += envelope.payload.len())?;
            if last == after {
                break;
            }
            after = last;
        }
        let scan = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let projections = paystate_projections::rebuild(&store)?;
        let rebuild = started.elapsed().as_secs_f64();
        println!(
            "{} events, {} payments: rebuild {:.0} events/s ({rebuild:.2} s), read_all alone {:.0} events/s, scan_all alone {:.0} events/s ({bytes} payload bytes)",
            head.0,
            projections.payment_count(),
            head.0 as f64 / rebuild,
            head.0 as f64 / read,
            head.0 as f64 / scan,
        );
    }
    Ok(())
}

fn bench(dir: &str, rounds: usize) -> Result<(), Failure> {
    for _ in 0..rounds {
        let (events, rebuild, rebuild_cpu) = {
            let store = SledStore::open(dir)?;
            let events = store.head()?.0 as f64;
            let (started, cpu) = (Instant::now(), cpu_seconds());
            paystate_projections::rebuild(&store)?;
            (events, started.elapsed().as_secs_f64(), cpu_seconds() - cpu)
        };
        let (raw, raw_cpu) = {
            let db = sled::Config::new().path(dir).open()?;
            let tree = db.open_tree(SledStore::EVENTS_TREE)?;
            let (started, cpu) = (Instant::now(), cpu_seconds());
            let mut bytes = 0usize;
            for entry in tree.iter() {
                let (key, value) = entry?;
                bytes += key.len() + value.len();
                std::hint::black_box(&value);
            }
            std::hint::black_box(bytes);
            (started.elapsed().as_secs_f64(), cpu_seconds() - cpu)
        };
        println!(
            "rebuild {:.0} events/s ({rebuild:.2} s, cpu {rebuild_cpu:.2} s), raw iteration {:.0} events/s ({raw:.2} s, cpu {raw_cpu:.2} s): {:.1}%",
            events / rebuild,
            events / raw,
            100.0 * raw / rebuild
        );
    }
    Ok(())
}

fn load(dir: &str) -> Result<(), Failure> {
    let store = SledStore::open(dir)?;
    println!("opened: peak RSS {}", peak_rss());
    if paystate_projections::persist::load(&store)?.is_none() {
        persist(&store)?;
        println!("persisted; run again to time the load");
        return Ok(());
    }
    let before = peak_rss();
    let started = Instant::now();
    let loaded = paystate_projections::persist::load(&store)?.ok_or("nothing loaded")?;
    println!(
        "load {:.2} s ({} payments), peak RSS {} (before the load {before})",
        started.elapsed().as_secs_f64(),
        loaded.payment_count(),
        peak_rss()
    );
    let started = Instant::now();
    let mut views = 0;
    let mut after = 0;
    loop {
        let page = loaded.list_payments(None, None, after, 1000);
        views += page.payments.len();
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    println!(
        "listed {views} payments in {:.2} s, peak RSS {}",
        started.elapsed().as_secs_f64(),
        peak_rss()
    );
    Ok(())
}

fn persist(store: &SledStore) -> Result<(), Failure> {
    let started = Instant::now();
    let mut projections = paystate_projections::rebuild(store)?;
    println!("rebuild {:.2} s", started.elapsed().as_secs_f64());
    projections.mark_all_changed();
    let started = Instant::now();
    store.projection_reset(paystate_projections::persist::PROJECTION_NAME)?;
    paystate_projections::ProjectionsHandle::new(projections).commit(store)?;
    println!("persist {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// CPU seconds this process has used (user and system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, in ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmHWM"))
        .unwrap_or("VmHWM unknown")
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

const APPENDERS: u64 = 64;

fn grow(dir: &str, webhooks: u64) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store: Arc<dyn EventStore> = Arc::new(SledStore::open(dir)?);
        let provider = ProviderId::parse("bench")?;
        let created = DomainEvent::from(ProviderCreated {
            provider_id: provider.clone(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: Msn::parse("123456")?,
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: Fingerprint::parse("fp")?,
            public_url: HttpUrl::parse("https://pay.example.no")?,
        });
        store
            .append(
                &StreamId::new(streams::provider_stream(&provider)),
                ExpectedVersion::Any,
                vec![new_event(&created, None)],
            )
            .await?;
        let per_appender = webhooks / APPENDERS;
        let mut tasks = Vec::new();
        for appender in 0..APPENDERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for sequence in 0..per_appender {
                    deliver(store.as_ref(), appender, sequence).await?;
                }
                Ok::<(), Failure>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        println!("log head {}", store.head()?);
        store.close().await?;
        Ok(())
    })
}

fn new_event(event: &DomainEvent, dedupe_key: Option<String>) -> NewEvent {
    let new = NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    );
    match dedupe_key {
        Some(key) => new.with_dedupe_key(key),
        None => new,
    }
}

const NAMES: [&str; 3] = ["CREATED", "AUTHORIZED", "CAPTURED"];

async fn deliver(store: &dyn EventStore, appender: u64, sequence: u64) -> Result<(), Failure> {
    let (block, offset) = (sequence / 25, sequence % 25);
    let (payment, step) = if offset < 24 {
        (block * 8 + offset / 3, (offset % 3) as usize)
    } else {
        (block * 8 + 7, 1)
    };
    let provider = ProviderId::parse("bench")?;
    let reference = Reference::parse(&format!("fill-c{appender}-p{payment}"))?;
    let name = NAMES[step];
    let psp = format!("{reference}-{}", name.to_ascii_lowercase());
    let amount = 10_000 + (payment % 97) * 100;
    let body = format!(
        r#"{{"msn":"123456","reference":"{reference}","pspReference":"{psp}","name":"{name}","amount":{{"currency":"NOK","value":{amount}}},"timestamp":"2025-01-14T09:30:01.{:03}Z","idempotencyKey":"{psp}-key","success":true}}"#,
        payment % 1000
    );
    let now = OffsetDateTime::now_utc();
    let receipt = DomainEvent::from(WebhookReceived {
        provider_id: provider.clone(),
        webhook_id: Some("6f1d7c3e-2b1a-4c55-9e0f-1a2b3c4d5e6f".to_owned()),
        body_base64: base64(body.as_bytes()),
        signed: SignedHeaders {
            x_ms_date: "Tue, 14 Jan 2025 09:30:02 GMT".to_owned(),
            x_ms_content_sha256: base64(&[7; 32]),
            host: "pay.example.no".to_owned(),
            path_and_query: "/webhooks/vipps/bench".to_owned(),
            authorization_header: AuthorizationHeader::Authorization,
            signature: base64(&[9; 32]),
        },
        received_at: now,
        verification: VerificationSummary {
            secret_version: SecretVersion::FIRST,
            registration_id: None,
            date_skew_seconds: 0,
            older_secret: false,
        },
    });
    let fact = PaymentEventRecorded {
        provider_id: provider.clone(),
        msn: Msn::parse("123456")?,
        reference: reference.clone(),
        psp_reference: PspReference::parse(&psp)?,
        name: PaymentEventName::parse(name),
        amount: Amount::from_minor_units(amount),
        currency: Currency::Nok,
        timestamp: OffsetDateTime::UNIX_EPOCH
            + time::Duration::milliseconds((payment % 1000) as i64),
        idempotency_key: Some(format!("{psp}-key")),
        success: true,
        source: FactSource::Webhook,
        anomaly: None,
    };
    let identity = fact.identity();
    let key = streams::payment_dedupe_key(
        &provider,
        &identity.msn,
        &identity.reference,
        &identity.name,
        &identity.psp_reference,
    );
    let stream = StreamId::new(streams::payment_stream(&provider, &reference));
    let events = vec![
        new_event(&receipt, None),
        new_event(&DomainEvent::from(fact), Some(key)),
    ];
    if let AppendOutcome::Duplicate {
        original_position, ..
    } = store.append(&stream, ExpectedVersion::Any, events).await?
    {
        let duplicate = DomainEvent::from(WebhookDuplicate {
            provider_id: provider,
            original_position: original_position.0,
            identity,
            secret_version: SecretVersion::FIRST,
            received_at: now,
            conflict: None,
        });
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![new_event(&duplicate, None)],
            )
            .await?;
    }
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
