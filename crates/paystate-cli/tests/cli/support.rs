//! Building data directories for the CLI tests through the store API, and running the real
//! `paystate` binary on them.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use paystate_domain::events::DomainEvent;
use paystate_domain::{streams, ProviderId, Reference, SecretVersion};
use paystate_server::secrets::{MasterKey, SecretVault};
use paystate_store::{EventStore, ExpectedVersion, NewEvent, Position, SledStore, StreamId};
use paystate_vipps::{sign_delivery, RegisteredUrl, WebhookSecret};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

pub const PROVIDER: &str = "vipps-test";
pub const MSN: &str = "123456";
pub const WEBHOOK_URL: &str = "https://pay.example.no/webhooks/vipps/vipps-test";
pub const SECRET_V1: &str =
    "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==";
pub const DATE: &str = "Tue, 14 Jan 2025 09:30:05 GMT";

/// What the output of one run of the binary says.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The `paystate` binary with a quiet log and no inherited data directory or master key.
pub fn paystate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paystate"));
    command
        .env("PAYSTATE_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("PAYSTATE_DATA")
        .env_remove("PAYSTATE_MASTER_KEY");
    command
}

/// Runs `paystate` with `args`, with `stdin` as standard input.
pub fn run_with_input(args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut child = paystate()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the paystate binary starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    // The binary may refuse before reading everything; a broken pipe is then expected.
    let _ = input.write_all(stdin);
    drop(input);
    Run::from(child.wait_with_output().expect("the paystate binary ends"))
}

/// Runs `paystate` with `args`.
pub fn run(args: &[&str]) -> Run {
    run_with_input(args, b"")
}

/// A data directory as `paystate serve` lays it out: `store/` and `master.key`.
#[derive(Debug)]
pub struct DataDir {
    _temp: tempfile::TempDir,
    path: PathBuf,
}

impl DataDir {
    /// A path inside a fresh temporary directory; nothing exists there yet.
    pub fn empty() -> DataDir {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("data");
        DataDir { _temp: temp, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }

    pub fn store_path(&self) -> PathBuf {
        paystate_server::store::store_path(&self.path)
    }

    /// Opens the store of this directory (the binary must not be running on it).
    ///
    /// `Locked` is retried for a few seconds: while another test of this process forks a
    /// child, the child shares every open file, the lock of a store this process has just
    /// closed included, until it executes its program.
    pub fn open(&self) -> Arc<SledStore> {
        let wait = std::time::Duration::from_secs(10);
        let options = paystate_store::StoreOptions::default();
        Arc::new(SledStore::open_within(self.store_path(), options, wait).unwrap())
    }

    /// Removes the log's last chunk below the store's API: what sled's recovery leaves when
    /// the database file is damaged before it (a shorter log). Returns the new last position.
    pub fn cut_off_last_chunk(&self) -> u64 {
        let db = sled::open(self.store_path()).unwrap();
        let events = db.open_tree(SledStore::EVENTS_TREE).unwrap();
        events.pop_max().unwrap().expect("a chunk");
        db.flush().unwrap();
        events
            .last()
            .unwrap()
            .map(|(key, _)| u64::from_be_bytes(key.as_ref().try_into().unwrap()))
            .unwrap_or(0)
    }

    /// Flips one byte of the stored record at `position`, below the store's API. The store
    /// may keep a batch of records under the key of its last position, so the record must be
    /// the only one of its append (as the provider's events are): the byte flipped, near the
    /// end, then lies inside that record's hash.
    pub fn flip_byte_in_record(&self, position: u64) {
        let db = sled::open(self.store_path()).unwrap();
        let events = db.open_tree(SledStore::EVENTS_TREE).unwrap();
        let (key, stored) = events
            .range(position.to_be_bytes()..)
            .next()
            .expect("a record at or after the position")
            .unwrap();
        assert_eq!(
            *key,
            position.to_be_bytes(),
            "the record must have been appended alone"
        );
        let mut stored = stored.to_vec();
        let byte = stored.len() - 5;
        stored[byte] ^= 0x01;
        events.insert(key, stored).unwrap();
        db.flush().unwrap();
    }
}

/// How a delivery is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// As received.
    None,
    /// The stored body differs from the one signed; the content hash is the original's.
    BodyOnly,
    /// The stored body and its content hash were both changed; the signature no longer fits.
    BodyAndContentHash,
    /// The delivery is stored as received, but the fact recorded with it has another amount
    /// (the log written that way, its hash chain intact).
    FactOnly,
    /// As `FactOnly`, and the fact also claims it was found by polling (which has no delivery
    /// to compare with).
    FactMarkedPolled,
}

/// Writes a log through the store API the way the server records facts.
pub struct LogBuilder {
    store: Arc<SledStore>,
    vault: SecretVault,
    runtime: tokio::runtime::Runtime,
    provider: ProviderId,
    url: RegisteredUrl,
}

impl LogBuilder {
    /// Opens (creating) the store of `data`, with a generated master key and webhook secret v1.
    pub fn new(data: &DataDir) -> LogBuilder {
        std::fs::create_dir_all(data.path()).unwrap();
        let store = data.open();
        let (master_key, _) = MasterKey::load_or_generate(data.path()).unwrap();
        let vault = SecretVault::open(store.clone(), master_key).unwrap();
        let provider = ProviderId::parse(PROVIDER).unwrap();
        vault
            .put_webhook_secret(
                &provider,
                SecretVersion::FIRST,
                &WebhookSecret::new(SECRET_V1),
            )
            .unwrap();
        LogBuilder {
            store,
            vault,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            provider,
            url: RegisteredUrl::parse(WEBHOOK_URL).unwrap(),
        }
    }

    /// Appends domain events (given as JSON, checked against the catalogue) to `stream`.
    pub fn append(
        &self,
        stream: &str,
        events: Vec<(&str, Value)>,
        dedupe: Option<String>,
    ) -> Position {
        let new_events = events
            .into_iter()
            .enumerate()
            .map(|(index, (event_type, data))| {
                let payload = serde_json::to_vec(&data).unwrap();
                DomainEvent::decode(event_type, 1, &payload).unwrap_or_else(|error| {
                    panic!("{event_type} is not in the catalogue's shape: {error}")
                });
                let event = NewEvent::new(event_type, 1, payload);
                match (&dedupe, index) {
                    (Some(key), 1) => event.with_dedupe_key(key.clone()),
                    _ => event,
                }
            })
            .collect();
        let outcome = self
            .runtime
            .block_on(
                self.store
                    .append(&StreamId::new(stream), ExpectedVersion::Any, new_events),
            )
            .unwrap();
        match outcome {
            paystate_store::AppendOutcome::Appended { last, .. } => last,
            other => panic!("expected an append, got {other:?}"),
        }
    }

    /// The provider is created, enabled and registered with secret v1.
    pub fn provider_setup(&self) {
        let stream = streams::provider_stream(&self.provider);
        self.append(
            &stream,
            vec![(
                "provider_created",
                json!({
                    "provider_id": PROVIDER, "kind": "vipps", "environment": "test", "msn": MSN,
                    "events": ["epayments.payment.created.v1", "epayments.payment.authorized.v1",
                               "epayments.payment.captured.v1", "epayments.payment.refunded.v1"],
                    "credentials_fingerprint": "sha256:1f2e3d4c",
                    "public_url": "https://pay.example.no"
                }),
            )],
            None,
        );
        self.append(&stream, vec![("provider_enabled", json!({}))], None);
        self.append(
            &stream,
            vec![(
                "webhook_registered",
                json!({
                    "registration_id": "reg-0001", "url": WEBHOOK_URL,
                    "events": ["epayments.payment.created.v1"], "secret_version": 1,
                    "secret_fingerprint": WebhookSecret::new(SECRET_V1).fingerprint(),
                    "reason": "enabled"
                }),
            )],
            None,
        );
    }

    /// One signed delivery of a payment event: the receipt and the fact, in the payment's
    /// stream, as one batch. Returns the receipt's position.
    pub fn delivery(
        &self,
        reference: &str,
        name: &str,
        psp: &str,
        amount: u64,
        tamper: Tamper,
    ) -> Position {
        let body = json!({
            "msn": MSN, "reference": reference, "pspReference": psp, "name": name,
            "amount": {"currency": "NOK", "value": amount},
            "timestamp": "2025-01-14T09:30:01.123Z", "idempotencyKey": null, "success": true
        })
        .to_string();
        let signed = sign_delivery(
            &WebhookSecret::new(SECRET_V1),
            &self.url,
            body.as_bytes(),
            DATE,
        );
        let signature = signed
            .authorization
            .split("Signature=")
            .nth(1)
            .unwrap()
            .to_owned();
        let (stored_body, content_hash) = match tamper {
            Tamper::None | Tamper::FactOnly | Tamper::FactMarkedPolled => {
                (body.clone(), signed.x_ms_content_sha256.clone())
            }
            Tamper::BodyOnly => (
                body.replace(&amount.to_string(), "1"),
                signed.x_ms_content_sha256.clone(),
            ),
            Tamper::BodyAndContentHash => {
                let changed = body.replace(&amount.to_string(), "1");
                let hash = paystate_vipps::signature::content_sha256(changed.as_bytes());
                (changed, hash)
            }
        };
        let reference_id = Reference::parse(reference).unwrap();
        let stream = streams::payment_stream(&self.provider, &reference_id);
        let dedupe = format!("payment:{PROVIDER}:{MSN}:{reference}:{name}:{psp}");
        let last = self.append(
            &stream,
            vec![
                (
                    "webhook_received",
                    json!({
                        "provider_id": PROVIDER, "webhook_id": "reg-0001",
                        "body_base64": BASE64.encode(stored_body.as_bytes()),
                        "signed": {
                            "x_ms_date": DATE, "x_ms_content_sha256": content_hash,
                            "host": self.url.host_for_signing(), "path_and_query": self.url.path_and_query(),
                            "authorization_header": "authorization", "signature": signature
                        },
                        "received_at": "2025-01-14T09:30:06Z",
                        "verification": {"secret_version": 1, "registration_id": "reg-0001",
                                         "date_skew_seconds": -1, "older_secret": false}
                    }),
                ),
                (
                    "payment_event_recorded",
                    json!({
                        "provider_id": PROVIDER, "msn": MSN, "reference": reference,
                        "psp_reference": psp, "name": name,
                        "amount": if tamper == Tamper::None { amount } else { amount * 10 },
                        "source": if tamper == Tamper::FactMarkedPolled { "poll" } else { "webhook" },
                        "currency": "NOK",
                        "timestamp": "2025-01-14T09:30:01.123Z", "success": true
                    }),
                ),
            ],
            Some(dedupe),
        );
        Position(last.0 - 1)
    }

    /// The provider and `payments` created payments: 3 + 2 × `payments` events.
    pub fn many_payments(&self, payments: usize) {
        self.provider_setup();
        for n in 0..payments {
            let reference = format!("bulk-order-{n:05}");
            self.delivery(
                &reference,
                "CREATED",
                &format!("psp-{n}"),
                1000,
                Tamper::None,
            );
        }
    }

    /// A provider with two payments: one authorized, partly captured and refunded, one
    /// created only.
    pub fn story(&self) {
        self.provider_setup();
        self.delivery(
            "acme-order-1001",
            "CREATED",
            "psp-create-1",
            10000,
            Tamper::None,
        );
        self.delivery(
            "acme-order-1001",
            "AUTHORIZED",
            "psp-create-1",
            10000,
            Tamper::None,
        );
        self.delivery(
            "acme-order-1001",
            "CAPTURED",
            "psp-capture-1",
            4000,
            Tamper::None,
        );
        self.delivery(
            "acme-order-1001",
            "REFUNDED",
            "psp-refund-1",
            1500,
            Tamper::None,
        );
        self.delivery(
            "acme-order-1002",
            "CREATED",
            "psp-create-2",
            2500,
            Tamper::None,
        );
    }

    pub fn finish(self) {
        drop(self.vault);
        self.runtime.block_on(self.store.close()).unwrap();
    }
}

/// The hash chain head of a data directory, read through the store API.
pub fn chain_head(data: &DataDir) -> (u64, String) {
    let store = data.open();
    let report = store.verify().unwrap();
    (report.events, hex::encode(report.head_hash))
}

/// The projections of a data directory, rebuilt from its log.
pub fn rebuilt_projections(data: &DataDir) -> paystate_projections::Projections {
    let store = data.open();
    paystate_projections::rebuild(store.as_ref()).unwrap()
}
