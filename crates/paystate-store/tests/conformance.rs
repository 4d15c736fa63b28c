//! The contract every `EventStore` implementation passes: one `check_*` function per concern,
//! run against each implementation by the `conformance!` macro at the bottom.

use paystate_store::{
    AppendOutcome, Envelope, EventStore, ExpectedVersion, KvOp, MemoryStore, NewEvent, Position,
    SledStore, StoreError, StoreOptions, StreamId, StreamVersion, Subscription, SubscriptionItem,
    Upcasters,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// One implementation under test, with what only the harness can do to it.
trait Backend: Sized + Send + 'static {
    fn create(options: StoreOptions) -> Self;
    fn store(&self) -> Arc<dyn EventStore>;
    /// Closes and opens the store again (a no-op for the in-memory store).
    async fn reopen(self) -> Self;
    /// Damages one byte of the stored record at `position`, as a failing disk would.
    async fn damage(self, position: Position) -> Self;
}

struct Memory(Arc<MemoryStore>);

impl Backend for Memory {
    fn create(options: StoreOptions) -> Self {
        Memory(Arc::new(MemoryStore::with_options(options)))
    }
    fn store(&self) -> Arc<dyn EventStore> {
        self.0.clone()
    }
    async fn reopen(self) -> Self {
        self
    }
    async fn damage(self, position: Position) -> Self {
        assert!(self.0.damage_record_for_tests(position, 20));
        self
    }
}

/// How long a test waits for sled to let go of a store it just closed (see
/// [`SledStore::open_within`]).
const RELEASE_WAIT: Duration = Duration::from_secs(10);

fn open_when_unlocked(path: impl AsRef<std::path::Path>) -> SledStore {
    SledStore::open_within(path, StoreOptions::default(), RELEASE_WAIT).unwrap()
}

/// The raw sled database of a store, once its lock is free (see [`SledStore::open_within`]).
fn raw_when_unlocked(path: impl AsRef<std::path::Path>) -> sled::Db {
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    loop {
        match sled::open(path.as_ref()) {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened.unwrap(),
        }
    }
}

struct Sled {
    dir: tempfile::TempDir,
    options: StoreOptions,
    store: Arc<SledStore>,
}

impl Sled {
    /// Closes the store and drops it (sled may hold the directory's lock a moment longer:
    /// open it again with [`SledStore::open_within`]).
    async fn shut(self) -> (tempfile::TempDir, StoreOptions) {
        self.store.close().await.unwrap();
        let store = Arc::try_unwrap(self.store).expect("the test holds the only handle");
        drop(store);
        (self.dir, self.options)
    }
}

impl Backend for Sled {
    fn create(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SledStore::open_with(dir.path().join("data"), options.clone()).unwrap());
        Sled {
            dir,
            options,
            store,
        }
    }
    fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }
    async fn reopen(self) -> Self {
        let (dir, options) = self.shut().await;
        let store = Arc::new(
            SledStore::open_within(dir.path().join("data"), options.clone(), RELEASE_WAIT).unwrap(),
        );
        Sled {
            dir,
            options,
            store,
        }
    }
    async fn damage(self, position: Position) -> Self {
        let (dir, options) = self.shut().await;
        {
            let db = raw_when_unlocked(dir.path().join("data"));
            let events = db.open_tree(SledStore::EVENTS_TREE).unwrap();
            // Records are stored in chunks keyed by their last position; the checks append
            // one event at a time, so the chunk under `position` ends with that record, and
            // a byte near its end lies inside the record's hash.
            let key = position.0.to_be_bytes();
            let mut chunk = events
                .get(key)
                .unwrap()
                .expect("a chunk ends at this position")
                .to_vec();
            let byte = chunk.len() - 5;
            chunk[byte] ^= 0xFF;
            events.insert(key, chunk).unwrap();
            db.flush().unwrap();
        }
        let store = Arc::new(
            SledStore::open_within(dir.path().join("data"), options.clone(), RELEASE_WAIT).unwrap(),
        );
        Sled {
            dir,
            options,
            store,
        }
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name)
}

fn event(payload: &str) -> NewEvent {
    NewEvent::new("thing_happened", 1, payload.as_bytes().to_vec())
}

fn positions(outcome: &AppendOutcome) -> (u64, u64) {
    match outcome {
        AppendOutcome::Appended { first, last, .. } => (first.0, last.0),
        other => panic!("expected Appended, got {other:?}"),
    }
}

async fn read_everything(store: &dyn EventStore) -> Vec<Envelope> {
    store.read_all_raw(Position::START, usize::MAX).unwrap()
}

async fn check_expected_versions<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    let s = stream("payment-1");
    // (expected, Ok(stream version after) or Err(actual version reported))
    let table: Vec<(ExpectedVersion, Result<u64, u64>)> = vec![
        (ExpectedVersion::Exists, Err(0)),
        (ExpectedVersion::Exact(StreamVersion(1)), Err(0)),
        (ExpectedVersion::NoStream, Ok(1)),
        (ExpectedVersion::NoStream, Err(1)),
        (ExpectedVersion::Exact(StreamVersion(0)), Err(1)),
        (ExpectedVersion::Exact(StreamVersion(1)), Ok(2)),
        (ExpectedVersion::Exact(StreamVersion(5)), Err(2)),
        (ExpectedVersion::Exists, Ok(3)),
        (ExpectedVersion::Any, Ok(4)),
    ];
    for (row, (expected, want)) in table.into_iter().enumerate() {
        let got = store.append(&s, expected, vec![event("x")]).await;
        match (got, want) {
            (Ok(AppendOutcome::Appended { stream_version, .. }), Ok(version)) => {
                assert_eq!(stream_version, StreamVersion(version), "row {row}");
            }
            (
                Err(StoreError::Conflict {
                    stream,
                    expected: reported,
                    actual,
                }),
                Err(version),
            ) => {
                assert_eq!(stream, "payment-1", "row {row}");
                assert_eq!(reported, expected, "row {row}");
                assert_eq!(actual, StreamVersion(version), "row {row}");
            }
            (got, want) => panic!("row {row}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(store.stream_version(&s).unwrap(), StreamVersion(4));
    assert_eq!(store.head().unwrap(), Position(4));
    // A batch extends the stream by its length.
    let outcome = store
        .append(
            &s,
            ExpectedVersion::Exact(StreamVersion(4)),
            vec![event("a"), event("b")],
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome::Appended {
            first: Position(5),
            last: Position(6),
            stream_version: StreamVersion(6)
        }
    );
}

async fn check_invalid_appends_are_refused<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    let cases: Vec<(StreamId, Vec<NewEvent>)> = vec![
        (stream("s"), vec![]),
        (stream(""), vec![event("x")]),
        (stream("s"), vec![NewEvent::new("", 1, vec![])]),
        (
            stream("s"),
            vec![
                event("a").with_dedupe_key("k"),
                event("b").with_dedupe_key("k"),
            ],
        ),
    ];
    for (index, (s, events)) in cases.into_iter().enumerate() {
        let result = store.append(&s, ExpectedVersion::Any, events).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "case {index}: {result:?}"
        );
    }
    assert_eq!(store.head().unwrap(), Position::START);
}

async fn check_dedupe_first_wins_forever<B: Backend>() {
    let mut backend = B::create(StoreOptions::default());
    let store = backend.store();
    let first = store
        .append(
            &stream("a"),
            ExpectedVersion::Any,
            vec![event("one").with_dedupe_key("delivery-1")],
        )
        .await
        .unwrap();
    assert_eq!(positions(&first), (1, 1));
    // A dedupe key is unique within its stream: in another stream it is another key.
    let elsewhere = store
        .append(
            &stream("b"),
            ExpectedVersion::NoStream,
            vec![event("one in b").with_dedupe_key("delivery-1")],
        )
        .await
        .unwrap();
    assert_eq!(positions(&elsewhere), (2, 2));
    drop(store);

    for round in 0..2 {
        let store = backend.store();
        // Same key, same stream, another payload: still the first one.
        for (name, original) in [("a", 1), ("b", 2)] {
            let again = store
                .append(
                    &stream(name),
                    ExpectedVersion::Any,
                    vec![event("two").with_dedupe_key("delivery-1")],
                )
                .await
                .unwrap();
            assert_eq!(
                again,
                AppendOutcome::Duplicate {
                    original_position: Position(original),
                    dedupe_key: "delivery-1".into()
                },
                "round {round}, stream {name}"
            );
        }
        // A batch with one taken key appends nothing at all.
        let mixed = store
            .append(
                &stream("a"),
                ExpectedVersion::Any,
                vec![
                    event("fresh").with_dedupe_key("delivery-2"),
                    event("dup").with_dedupe_key("delivery-1"),
                ],
            )
            .await
            .unwrap();
        assert!(
            matches!(mixed, AppendOutcome::Duplicate { .. }),
            "round {round}"
        );
        assert_eq!(store.head().unwrap(), Position(2), "round {round}");
        for (name, key, position) in [
            ("a", "delivery-1", Some(Position(1))),
            ("b", "delivery-1", Some(Position(2))),
            ("a", "delivery-2", None),
            ("c", "delivery-1", None),
        ] {
            assert_eq!(
                store.dedupe_position(&stream(name), key).unwrap(),
                position,
                "round {round}: {key} in {name}"
            );
        }
        assert_eq!(
            store.stream_version(&stream("b")).unwrap(),
            StreamVersion(1)
        );
        drop(store);
        backend = backend.reopen().await;
    }

    // A duplicate wins over a version conflict, so a retried append learns it already landed.
    let store = backend.store();
    let retried = store
        .append(
            &stream("a"),
            ExpectedVersion::NoStream,
            vec![event("one").with_dedupe_key("delivery-1")],
        )
        .await
        .unwrap();
    assert!(matches!(retried, AppendOutcome::Duplicate { .. }));
}

/// A stream of many appends, each with its own dedupe key, interleaved with another stream so
/// that no two of its appends are neighbours in the log: every key stays found, and the stream
/// reads back whole, before and after a reopen.
async fn check_a_long_stream_keeps_its_keys_and_runs<B: Backend>() {
    let mut backend = B::create(StoreOptions::default());
    let store = backend.store();
    let appends = 40u64;
    let mut expected = Vec::new();
    for index in 0..appends {
        let outcome = store
            .append(
                &stream("long"),
                ExpectedVersion::Exact(StreamVersion(index * 2)),
                vec![
                    event(&format!("long-{index}")).with_dedupe_key(format!("key-{index}")),
                    event(&format!("long-{index}-b")),
                ],
            )
            .await
            .unwrap();
        let (first, last) = positions(&outcome);
        expected.push((first, format!("key-{index}")));
        assert_eq!(last, first + 1);
        store
            .append(
                &stream("between"),
                ExpectedVersion::Any,
                vec![event("between").with_dedupe_key(format!("key-{index}"))],
            )
            .await
            .unwrap();
    }
    drop(store);
    for round in 0..2 {
        let store = backend.store();
        assert_eq!(
            store.stream_version(&stream("long")).unwrap(),
            StreamVersion(appends * 2),
            "round {round}"
        );
        let read = store
            .read_stream(&stream("long"), StreamVersion(0), 1000)
            .unwrap();
        assert_eq!(read.len() as u64, appends * 2, "round {round}");
        for (index, envelope) in read.iter().enumerate() {
            assert_eq!(envelope.stream_version.0, index as u64 + 1);
            assert_eq!(
                envelope.position.0,
                3 * (index as u64 / 2) + 1 + index as u64 % 2
            );
        }
        let tail = store
            .read_stream(&stream("long"), StreamVersion(appends * 2 - 3), 1000)
            .unwrap();
        assert_eq!(tail, read[read.len() - 3..].to_vec(), "round {round}");
        for (position, key) in &expected {
            assert_eq!(
                store.dedupe_position(&stream("long"), key).unwrap(),
                Some(Position(*position)),
                "round {round}: {key}"
            );
            let again = store
                .append(
                    &stream("long"),
                    ExpectedVersion::Any,
                    vec![event("again").with_dedupe_key(key.clone())],
                )
                .await
                .unwrap();
            assert_eq!(
                again,
                AppendOutcome::Duplicate {
                    original_position: Position(*position),
                    dedupe_key: key.clone()
                },
                "round {round}"
            );
        }
        assert_eq!(
            store
                .dedupe_position(&stream("long"), "key-missing")
                .unwrap(),
            None
        );
        drop(store);
        backend = backend.reopen().await;
    }
}

async fn check_gapless_positions_under_concurrency<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    let writers = 32u64;
    let appends_per_writer = 20u64;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            for seq in 0..appends_per_writer {
                let s = stream(&format!("stream-{}", (writer + seq) % 5));
                let events = vec![event(&format!("{writer}-{seq}")); 1 + (seq % 3) as usize];
                let (first, last) = positions(
                    &store
                        .append(&s, ExpectedVersion::Any, events)
                        .await
                        .unwrap(),
                );
                taken.extend(first..=last);
            }
            taken
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let total = all.len() as u64;
    let unique: BTreeSet<u64> = all.into_iter().collect();
    assert_eq!(
        unique.len() as u64,
        total,
        "a position was handed out twice"
    );
    assert_eq!(
        unique,
        (1..=total).collect::<BTreeSet<u64>>(),
        "positions have a gap"
    );
    let log = read_everything(&*store).await;
    assert_eq!(log.len() as u64, total);
    // Each stream's versions are 1..=n in position order.
    for name in 0..5 {
        let s = stream(&format!("stream-{name}"));
        let versions: Vec<u64> = log
            .iter()
            .filter(|e| e.stream == s)
            .map(|e| e.stream_version.0)
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
        assert_eq!(store.stream_version(&s).unwrap().0, versions.len() as u64);
        // Pages of 2 cut through multi-event appends.
        let mut paged = Vec::new();
        let mut after = StreamVersion(0);
        loop {
            let page = store.read_stream(&s, after, 2).unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            after = last.stream_version;
            paged.extend(page);
        }
        let expected: Vec<&Envelope> = log.iter().filter(|e| e.stream == s).collect();
        assert_eq!(paged.iter().collect::<Vec<_>>(), expected);
    }
    let report = store.verify().unwrap();
    assert_eq!(report.first_bad, None);
    assert_eq!(report.events, total);
}

async fn check_paging<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    for index in 0..25 {
        let name = if index % 3 == 0 { "odd" } else { "even" };
        store
            .append(
                &stream(name),
                ExpectedVersion::Any,
                vec![event(&index.to_string())],
            )
            .await
            .unwrap();
    }
    let everything = store.read_all(Position::START, 1000).unwrap();
    assert_eq!(everything.len(), 25);
    let mut paged = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 7).unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.position;
        paged.extend(page);
    }
    assert_eq!(paged, everything);
    assert_eq!(store.read_all(Position(25), 10).unwrap(), vec![]);
    assert_eq!(store.read_all(Position(3), 0).unwrap(), vec![]);
    assert_eq!(
        store.read_event(Position(4)).unwrap().as_ref(),
        everything.get(3)
    );
    assert_eq!(store.read_event(Position(26)).unwrap(), None);
    assert_eq!(store.read_event(Position::START).unwrap(), None);

    let odd: Vec<Envelope> = everything
        .iter()
        .filter(|e| e.stream.as_str() == "odd")
        .cloned()
        .collect();
    let mut stream_paged = Vec::new();
    let mut version = StreamVersion(0);
    loop {
        let page = store.read_stream(&stream("odd"), version, 3).unwrap();
        let Some(last) = page.last() else { break };
        version = last.stream_version;
        stream_paged.extend(page);
    }
    assert_eq!(stream_paged, odd);
    assert_eq!(
        store
            .read_stream(&stream("nobody"), StreamVersion(0), 10)
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .read_stream(&stream("odd"), StreamVersion(u64::MAX), 10)
            .unwrap(),
        vec![]
    );
}

/// Collects what one `scan_all` visits, and the position it returns.
fn scan(
    store: &dyn EventStore,
    after: Position,
    limit: usize,
) -> (Vec<Envelope>, Result<Position, StoreError>) {
    let mut seen = Vec::new();
    let last = store.scan_all(after, limit, &mut |envelope| {
        seen.push(envelope.to_envelope())
    });
    (seen, last)
}

async fn check_scan_all_visits_what_read_all_reads<B: Backend>() {
    let backend = B::create(StoreOptions::default().with_upcasters(upcasters()));
    let store = backend.store();
    assert_eq!(
        scan(&*store, Position::START, 10).1.unwrap(),
        Position::START
    );
    for index in 0..20 {
        let (event_type, version) = if index % 4 == 0 {
            ("other", 1)
        } else {
            ("thing_happened", if index % 3 == 0 { 3 } else { 1 })
        };
        let mut events =
            vec![
                NewEvent::new(event_type, version, format!("payload {index}").into_bytes())
                    .with_dedupe_key(format!("key-{index}"))
                    .with_correlation(uuid::Uuid::now_v7()),
            ];
        if index % 5 == 0 {
            events.push(
                NewEvent::new("other", 1, b"second".to_vec()).with_causation(uuid::Uuid::now_v7()),
            );
        }
        store
            .append(
                &stream(&format!("s{}", index % 3)),
                ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap();
    }
    let everything = store.read_all(Position::START, 1000).unwrap();
    assert_eq!(everything.len(), 24);
    let head = store.head().unwrap();

    let (seen, last) = scan(&*store, Position::START, usize::MAX);
    assert_eq!(last.unwrap(), head);
    assert_eq!(seen, everything, "upcast exactly as read_all upcasts");
    assert!(seen
        .iter()
        .any(|e| e.payload.starts_with(b"v3:v2(") && e.schema_version == 3));
    assert!(seen
        .iter()
        .any(|e| e.event_type == "other" && e.schema_version == 1));

    // Paging by the returned position covers the log once, in order.
    let mut paged = Vec::new();
    let mut after = Position::START;
    loop {
        let (page, last) = scan(&*store, after, 7);
        let last = last.unwrap();
        assert!(page.len() <= 7);
        match page.last() {
            Some(envelope) => assert_eq!(last, envelope.position),
            None => {
                assert_eq!(last, after);
                break;
            }
        }
        after = last;
        paged.extend(page);
    }
    assert_eq!(paged, everything);

    // Nothing to visit: the position given comes back.
    for (after, limit) in [(head, 10), (Position(3), 0), (Position(1_000), 10)] {
        let (seen, last) = scan(&*store, after, limit);
        assert_eq!((seen.len(), last.unwrap()), (0, after));
    }
    assert_eq!(scan(&*store, Position(5), 3).0, everything[5..8].to_vec());

    // Once reopened, nothing is held in memory: the scan decodes the stored records and must
    // visit exactly the same.
    drop(store);
    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(scan(&*store, Position::START, usize::MAX).0, everything);
    assert_eq!(scan(&*store, Position(5), 3).0, everything[5..8].to_vec());

    // A payload no upcaster can read stops the scan with an error naming its position; what
    // was visited before it is a prefix of the log.
    store
        .append(
            &stream("s0"),
            ExpectedVersion::Any,
            vec![NewEvent::new("thing_happened", 2, b"garbage".to_vec())],
        )
        .await
        .unwrap();
    let (seen, last) = scan(&*store, Position::START, usize::MAX);
    assert_eq!(seen, everything[..seen.len()].to_vec());
    match last {
        Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, head.0 + 1),
        other => panic!("expected an upcast error, got {other:?}"),
    }
}

async fn next_item(subscription: &mut Subscription) -> SubscriptionItem {
    // A generous bound so a broken subscription fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("the subscription produced nothing")
        .unwrap()
}

async fn check_subscription_catches_up_then_goes_live<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    for index in 0..3 {
        store
            .append(
                &stream("s"),
                ExpectedVersion::Any,
                vec![event(&index.to_string())],
            )
            .await
            .unwrap();
    }
    let mut subscription = Subscription::new(store.clone(), Position(1));
    let mut seen = Vec::new();
    for _ in 0..2 {
        match next_item(&mut subscription).await {
            SubscriptionItem::Event(envelope) => seen.push(envelope.position.0),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    assert_eq!(seen, vec![2, 3]);
    assert_eq!(
        next_item(&mut subscription).await,
        SubscriptionItem::CaughtUp(Position(3))
    );

    let writer = store.clone();
    let live = tokio::spawn(async move {
        writer
            .append(&stream("s"), ExpectedVersion::Any, vec![event("live")])
            .await
            .unwrap()
    });
    match next_item(&mut subscription).await {
        SubscriptionItem::Event(envelope) => {
            assert_eq!(envelope.position, Position(4));
            assert_eq!(envelope.payload, b"live");
        }
        other => panic!("expected the live event, got {other:?}"),
    }
    live.await.unwrap();
}

async fn check_filtered_subscription_passes_over_unwanted_events<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    // Positions 1..=6 alternate between stream "a" and stream "b".
    for index in 0..6 {
        let name = if index % 2 == 0 { "a" } else { "b" };
        store
            .append(
                &stream(name),
                ExpectedVersion::Any,
                vec![event(&format!("{name}{index}"))],
            )
            .await
            .unwrap();
    }
    let mut subscription = Subscription::filtered(store.clone(), Position::START, |envelope| {
        envelope.stream == "b"
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        match next_item(&mut subscription).await {
            SubscriptionItem::Event(envelope) => {
                assert_eq!(envelope.stream.as_str(), "b");
                seen.push(envelope.position.0);
            }
            other => panic!("expected an event of stream b, got {other:?}"),
        }
    }
    assert_eq!(seen, vec![2, 4, 6]);
    assert_eq!(
        next_item(&mut subscription).await,
        SubscriptionItem::CaughtUp(Position(6))
    );

    // Live: an unwanted event is passed over (the position still moves), a wanted one arrives.
    store
        .append(&stream("a"), ExpectedVersion::Any, vec![event("a-live")])
        .await
        .unwrap();
    let writer = store.clone();
    let live = tokio::spawn(async move {
        writer
            .append(&stream("b"), ExpectedVersion::Any, vec![event("b-live")])
            .await
            .unwrap()
    });
    match next_item(&mut subscription).await {
        SubscriptionItem::Event(envelope) => {
            assert_eq!(envelope.position, Position(8));
            assert_eq!(envelope.payload, b"b-live");
        }
        other => panic!("expected the live event of stream b, got {other:?}"),
    }
    assert_eq!(subscription.position(), Position(8));
    live.await.unwrap();
}

async fn check_verify_names_a_damaged_record<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    for index in 0..5 {
        store
            .append(
                &stream("s"),
                ExpectedVersion::Any,
                vec![event(&format!("payload number {index}"))],
            )
            .await
            .unwrap();
    }
    let clean = store.verify().unwrap();
    assert_eq!(clean.first_bad, None);
    assert_eq!((clean.events, clean.head), (5, Position(5)));
    assert_eq!(clean.head_hash, read_everything(&*store).await[4].hash);
    drop(store);

    let backend = backend.damage(Position(3)).await;
    let report = backend.store().verify().unwrap();
    let (position, reason) = report.first_bad.expect("the damage is found");
    assert_eq!(position, Position(3), "{reason}");
    assert_eq!(report.events, 2);
}

fn upcasters() -> Upcasters {
    Upcasters::new()
        .with("thing_happened", 1, |payload: &[u8]| {
            let mut next = b"v2(".to_vec();
            next.extend_from_slice(payload);
            next.push(b')');
            Ok(next)
        })
        .with("thing_happened", 2, |payload: &[u8]| {
            if payload.starts_with(b"v2(") {
                Ok([b"v3:".as_slice(), payload].concat())
            } else {
                Err("not a version 2 payload".into())
            }
        })
}

async fn check_upcasting_on_read_keeps_stored_bytes<B: Backend>() {
    let backend = B::create(StoreOptions::default().with_upcasters(upcasters()));
    let store = backend.store();
    store
        .append(&stream("s"), ExpectedVersion::Any, vec![event("old")])
        .await
        .unwrap();
    store
        .append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![NewEvent::new("thing_happened", 3, b"new".to_vec())],
        )
        .await
        .unwrap();
    store
        .append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![NewEvent::new("other", 1, b"untouched".to_vec())],
        )
        .await
        .unwrap();

    let read = store.read_all(Position::START, 10).unwrap();
    let shapes: Vec<(u32, &[u8])> = read
        .iter()
        .map(|e| (e.schema_version, e.payload.as_slice()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            (3, b"v3:v2(old)".as_slice()),
            (3, b"new"),
            (1, b"untouched")
        ]
    );
    assert_eq!(
        store
            .read_stream(&stream("s"), StreamVersion(0), 1)
            .unwrap()[0],
        read[0]
    );
    assert_eq!(
        store.read_event(Position(1)).unwrap().as_ref(),
        Some(&read[0])
    );

    let raw = store.read_all_raw(Position::START, 10).unwrap();
    assert_eq!(
        (raw[0].schema_version, raw[0].payload.as_slice()),
        (1, b"old".as_slice())
    );
    assert_eq!(store.verify().unwrap().first_bad, None);

    // A failing upcaster is an error naming the position, not a panic or a silent pass.
    drop(store);
    let backend = backend.reopen().await;
    let store = backend.store();
    store
        .append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![NewEvent::new("thing_happened", 2, b"garbage".to_vec())],
        )
        .await
        .unwrap();
    match store.read_all(Position(3), 10) {
        Err(StoreError::Corrupt { position: 4, .. }) => {}
        other => panic!("expected an upcast error at 4, got {other:?}"),
    }
}

async fn check_import_keeps_hashes_and_refuses_a_broken_chain<B: Backend>() {
    let source = B::create(StoreOptions::default());
    let source_store = source.store();
    for index in 0..6 {
        let e = event(&index.to_string())
            .with_dedupe_key(format!("key-{index}"))
            .with_correlation(uuid::Uuid::now_v7());
        source_store
            .append(
                &stream(&format!("s{}", index % 2)),
                ExpectedVersion::Any,
                vec![e],
            )
            .await
            .unwrap();
    }
    let exported = read_everything(&*source_store).await;

    let target = B::create(StoreOptions::default());
    let store = target.store();
    let mut broken = exported.clone();
    broken[3].payload = b"forged".to_vec();
    let refused = store.import(broken).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(reason)) if reason.contains("position 4")),
        "{refused:?}"
    );
    assert_eq!(
        store.head().unwrap(),
        Position::START,
        "a refused import writes nothing"
    );

    let skipped = store.import(exported[1..].to_vec()).await;
    assert!(
        matches!(skipped, Err(StoreError::Invalid(_))),
        "{skipped:?}"
    );

    store.import(exported[..4].to_vec()).await.unwrap();
    store.import(exported[4..].to_vec()).await.unwrap();
    drop(store);
    let target = target.reopen().await;
    let store = target.store();
    assert_eq!(read_everything(&*store).await, exported);
    assert_eq!(
        store.verify().unwrap().head_hash,
        source_store.verify().unwrap().head_hash
    );
    assert_eq!(
        store.dedupe_position(&stream("s0"), "key-2").unwrap(),
        Some(Position(3))
    );
    assert_eq!(store.dedupe_position(&stream("s1"), "key-2").unwrap(), None);
    assert_eq!(
        store.stream_version(&stream("s1")).unwrap(),
        StreamVersion(3)
    );

    let again = store.import(exported[5..].to_vec()).await;
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
    // The imported log continues like any other.
    let next = store
        .append(
            &stream("s0"),
            ExpectedVersion::Exact(StreamVersion(3)),
            vec![event("after")],
        )
        .await
        .unwrap();
    assert_eq!(positions(&next), (7, 7));
    assert_eq!(store.verify().unwrap().first_bad, None);
}

async fn check_projection_state_and_checkpoint_move_together<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    assert_eq!(store.projection_checkpoint("payments").unwrap(), None);
    let put = |key: &str, value: &str| KvOp::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    };
    store
        .commit_projection(
            "payments",
            Position(5),
            vec![
                put("p/1", "created"),
                put("p/2", "created"),
                put("q/1", "x"),
            ],
        )
        .unwrap();
    store
        .commit_projection(
            "payments",
            Position(9),
            vec![
                put("p/1", "captured"),
                KvOp::Delete {
                    key: b"p/2".to_vec(),
                },
            ],
        )
        .unwrap();
    store
        .commit_projection("other", Position(1), vec![put("p/1", "elsewhere")])
        .unwrap();
    assert!(matches!(
        store.commit_projection("", Position(1), vec![]),
        Err(StoreError::Invalid(_))
    ));
    drop(store);

    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(
        store.projection_checkpoint("payments").unwrap(),
        Some(Position(9))
    );
    assert_eq!(
        store.projection_get("payments", b"p/1").unwrap(),
        Some(b"captured".to_vec())
    );
    assert_eq!(store.projection_get("payments", b"p/2").unwrap(), None);
    assert_eq!(
        store.projection_scan("payments", b"p/").unwrap(),
        vec![(b"p/1".to_vec(), b"captured".to_vec())]
    );
    assert_eq!(
        store.projection_scan("payments", b"").unwrap(),
        vec![
            (b"p/1".to_vec(), b"captured".to_vec()),
            (b"q/1".to_vec(), b"x".to_vec())
        ],
        "a scan returns the state only, whatever else the store keeps beside it"
    );
    store.projection_reset("payments").unwrap();
    assert_eq!(store.projection_checkpoint("payments").unwrap(), None);
    assert_eq!(store.projection_scan("payments", b"").unwrap(), vec![]);
    assert_eq!(
        store.projection_get("other", b"p/1").unwrap(),
        Some(b"elsewhere".to_vec())
    );
    assert_eq!(
        store.head().unwrap(),
        Position::START,
        "projection writes are not events"
    );
}

async fn check_side_data_stays_out_of_the_log<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    assert_eq!(store.side_writes(), 0);
    store
        .side_put("secrets", b"provider/1", b"sealed-1")
        .unwrap();
    store
        .side_put("secrets", b"provider/2", b"sealed-2")
        .unwrap();
    store
        .side_put("secrets", b"provider/1", b"sealed-1b")
        .unwrap();
    store.side_put("other", b"provider/1", b"x").unwrap();
    store.side_get("secrets", b"provider/1").unwrap();
    store.side_scan("secrets", b"").unwrap();
    assert_eq!(
        store.side_writes(),
        4,
        "every side write is counted, reads are not"
    );
    drop(store);
    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(
        store.side_get("secrets", b"provider/1").unwrap(),
        Some(b"sealed-1b".to_vec())
    );
    assert_eq!(store.side_get("secrets", b"missing").unwrap(), None);
    assert_eq!(
        store.side_scan("secrets", b"provider/").unwrap(),
        vec![
            (b"provider/1".to_vec(), b"sealed-1b".to_vec()),
            (b"provider/2".to_vec(), b"sealed-2".to_vec())
        ]
    );
    assert_eq!(store.head().unwrap(), Position::START);
    assert_eq!(store.verify().unwrap().events, 0);
}

async fn check_reopen_keeps_everything<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    for index in 0..40u32 {
        let mut e = event(&"x".repeat(index as usize * 13));
        if index % 4 == 0 {
            e = e.with_dedupe_key(format!("k{index}"));
        }
        store
            .append(
                &stream(&format!("s{}", index % 3)),
                ExpectedVersion::Any,
                vec![e],
            )
            .await
            .unwrap();
    }
    let before = read_everything(&*store).await;
    let hash_before = store.verify().unwrap().head_hash;
    drop(store);

    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(read_everything(&*store).await, before);
    assert_eq!(store.head().unwrap(), Position(40));
    assert_eq!(
        store.stream_version(&stream("s1")).unwrap(),
        StreamVersion(13)
    );
    let next = store
        .append(
            &stream("s1"),
            ExpectedVersion::Exact(StreamVersion(13)),
            vec![event("more")],
        )
        .await
        .unwrap();
    assert_eq!(positions(&next), (41, 41));
    let after = read_everything(&*store).await;
    assert_eq!(
        after[40].prev_hash, hash_before,
        "the chain continues across reopen"
    );
    assert_eq!(store.verify().unwrap().first_bad, None);
}

async fn check_closed_store_refuses_writes<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    store
        .append(&stream("s"), ExpectedVersion::Any, vec![event("x")])
        .await
        .unwrap();
    store.close().await.unwrap();
    let result = store
        .append(&stream("s"), ExpectedVersion::Any, vec![event("y")])
        .await;
    assert!(matches!(result, Err(StoreError::Closed)), "{result:?}");
    assert_eq!(
        store.read_all(Position::START, 10).unwrap().len(),
        1,
        "reads still work"
    );
}

/// A long pseudo-random sequence of appends, each answer compared with a model of the rules
/// (dedupe first, then the expected version), then the whole log compared with the model.
async fn check_appends_follow_the_model<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    let mut versions = std::collections::HashMap::<String, u64>::new();
    // Dedupe keys per (stream, key).
    let mut keys = std::collections::HashMap::<(String, String), u64>::new();
    let mut head = 0u64;
    let mut seen = [0u32; 3]; // duplicates, conflicts, appends
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % below
    };
    for step in 0..300 {
        let name = format!("s{}", next(3));
        let expected = match next(4) {
            0 => ExpectedVersion::Any,
            1 => ExpectedVersion::NoStream,
            2 => ExpectedVersion::Exists,
            _ => ExpectedVersion::Exact(StreamVersion(next(5))),
        };
        let count = 1 + next(3);
        let events: Vec<NewEvent> = (0..count)
            .map(|index| {
                let e = event(&format!("{step}-{index}"));
                match next(3) {
                    0 => e.with_dedupe_key(format!("k{}-{index}", next(12))),
                    _ => e,
                }
            })
            .collect();

        let current = versions.get(&name).copied().unwrap_or(0);
        let taken = events
            .iter()
            .filter_map(|e| e.dedupe_key.as_ref())
            .find_map(|key| {
                keys.get(&(name.clone(), key.clone()))
                    .map(|position| (key.clone(), *position))
            });
        let holds = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exists => current > 0,
            ExpectedVersion::Exact(v) => v.0 == current,
        };
        let got = store.append(&stream(&name), expected, events.clone()).await;
        match (taken, holds, got) {
            (
                Some((key, position)),
                _,
                Ok(AppendOutcome::Duplicate {
                    original_position,
                    dedupe_key,
                }),
            ) => {
                assert_eq!(
                    (original_position.0, dedupe_key),
                    (position, key),
                    "step {step}"
                );
                seen[0] += 1;
            }
            (None, false, Err(StoreError::Conflict { actual, .. })) => {
                assert_eq!(actual.0, current, "step {step}");
                seen[1] += 1;
            }
            (
                None,
                true,
                Ok(AppendOutcome::Appended {
                    first,
                    last,
                    stream_version,
                }),
            ) => {
                assert_eq!((first.0, last.0), (head + 1, head + count), "step {step}");
                assert_eq!(stream_version.0, current + count, "step {step}");
                for (offset, e) in events.iter().enumerate() {
                    if let Some(key) = &e.dedupe_key {
                        keys.insert((name.clone(), key.clone()), head + 1 + offset as u64);
                    }
                }
                head += count;
                versions.insert(name, current + count);
                seen[2] += 1;
            }
            (taken, holds, got) => {
                panic!("step {step}: model says taken={taken:?} holds={holds}, store says {got:?}")
            }
        }
    }
    assert!(
        seen.iter().all(|&n| n > 10),
        "the sequence exercises every rule: {seen:?}"
    );
    assert_eq!(store.head().unwrap(), Position(head));
    for (name, version) in &versions {
        assert_eq!(store.stream_version(&stream(name)).unwrap().0, *version);
    }
    for ((name, key), position) in &keys {
        assert_eq!(
            store.dedupe_position(&stream(name), key).unwrap(),
            Some(Position(*position))
        );
    }
    assert_eq!(store.verify().unwrap().first_bad, None);
}

async fn check_idempotent_projection_commit_writes_entries_then_checkpoint<B: Backend>() {
    let backend = B::create(StoreOptions::default());
    let store = backend.store();
    let put = |key: &str, value: &str| KvOp::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    };
    store
        .commit_projection_idempotent(
            "views",
            Position(4),
            (0..300)
                .map(|n| put(&format!("p/{n:03}"), "created"))
                .collect(),
            vec![put("meta/totals", "300")],
        )
        .unwrap();
    store
        .commit_projection_idempotent(
            "views",
            Position(6),
            vec![
                put("p/007", "captured"),
                KvOp::Delete {
                    key: b"p/008".to_vec(),
                },
            ],
            vec![put("meta/totals", "299")],
        )
        .unwrap();
    assert!(matches!(
        store.commit_projection_idempotent("", Position(7), vec![], vec![]),
        Err(StoreError::Invalid(_))
    ));
    drop(store);

    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(
        store.projection_checkpoint("views").unwrap(),
        Some(Position(6))
    );
    let entries = store.projection_scan("views", b"p/").unwrap();
    assert_eq!(entries.len(), 299);
    assert_eq!(
        store.projection_get("views", b"p/007").unwrap(),
        Some(b"captured".to_vec())
    );
    assert_eq!(store.projection_get("views", b"p/008").unwrap(), None);
    assert_eq!(
        store.projection_get("views", b"p/299").unwrap(),
        Some(b"created".to_vec())
    );
    assert_eq!(
        store.projection_get("views", b"meta/totals").unwrap(),
        Some(b"299".to_vec())
    );
    assert_eq!(
        store.head().unwrap(),
        Position::START,
        "nothing entered the log"
    );
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::$check::<super::Memory>().await;
                }
            )*
        }
        mod sled_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::$check::<super::Sled>().await;
                }
            )*
        }
    };
}

conformance!(
    check_expected_versions,
    check_invalid_appends_are_refused,
    check_dedupe_first_wins_forever,
    check_a_long_stream_keeps_its_keys_and_runs,
    check_gapless_positions_under_concurrency,
    check_paging,
    check_scan_all_visits_what_read_all_reads,
    check_subscription_catches_up_then_goes_live,
    check_filtered_subscription_passes_over_unwanted_events,
    check_verify_names_a_damaged_record,
    check_upcasting_on_read_keeps_stored_bytes,
    check_import_keeps_hashes_and_refuses_a_broken_chain,
    check_projection_state_and_checkpoint_move_together,
    check_idempotent_projection_commit_writes_entries_then_checkpoint,
    check_side_data_stays_out_of_the_log,
    check_reopen_keeps_everything,
    check_closed_store_refuses_writes,
    check_appends_follow_the_model,
);

/// Directories the sled store must refuse, each with a clear error naming the path.
mod opening {
    use super::*;

    fn check_refused(path: &std::path::Path, matches: impl Fn(&StoreError) -> bool) {
        let error = SledStore::open(path).expect_err("must not open");
        assert!(matches(&error), "{error:?}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn a_directory_with_other_files_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        check_refused(dir.path(), |e| matches!(e, StoreError::NotAStore { .. }));
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_file_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, "hello").unwrap();
        check_refused(&file, |e| matches!(e, StoreError::NotAStore { .. }));
    }

    #[test]
    fn a_foreign_sled_database_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = raw_when_unlocked(dir.path());
            db.insert(b"someone", b"else").unwrap();
            db.flush().unwrap();
        }
        check_refused(dir.path(), |e| matches!(e, StoreError::NotAStore { .. }));
    }

    #[test]
    fn damaged_sled_files_are_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("conf"), "garbage").unwrap();
        std::fs::write(dir.path().join("db"), vec![0xAB; 4096]).unwrap();
        let error = SledStore::open(dir.path()).expect_err("must not open");
        assert!(
            error
                .to_string()
                .contains(&dir.path().display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_when_unlocked(dir.path()));
        {
            let db = raw_when_unlocked(dir.path());
            let meta = db.open_tree("paystate.meta").unwrap();
            meta.insert(
                b"format_version",
                &(paystate_store::FORMAT_VERSION + 1).to_be_bytes(),
            )
            .unwrap();
            db.flush().unwrap();
        }
        check_refused(dir.path(), |e| {
            matches!(e, StoreError::FormatTooNew { found, supported, .. }
                if *found == paystate_store::FORMAT_VERSION + 1 && *supported == paystate_store::FORMAT_VERSION)
        });
    }

    #[test]
    fn a_store_in_use_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _open = open_when_unlocked(dir.path());
        check_refused(dir.path(), |e| matches!(e, StoreError::Locked { .. }));
    }

    #[test]
    fn an_open_within_a_wait_gets_a_store_another_holder_lets_go_of() {
        let dir = tempfile::tempdir().unwrap();
        let held = SledStore::open(dir.path()).unwrap();
        let at_once = SledStore::open_within(dir.path(), StoreOptions::default(), Duration::ZERO);
        assert!(
            matches!(at_once, Err(StoreError::Locked { .. })),
            "{at_once:?}"
        );
        let holder = std::thread::spawn(move || {
            // Still held when the wait below begins.
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let store =
            SledStore::open_within(dir.path(), StoreOptions::default(), RELEASE_WAIT).unwrap();
        holder.join().unwrap();
        assert_eq!(store.head().unwrap(), Position::START);
    }

    #[test]
    fn a_first_open_killed_half_way_is_finished_on_the_next_open() {
        // Killed after the marker file, before sled wrote anything.
        let dir = tempfile::tempdir().unwrap();
        drop(open_when_unlocked(dir.path()));
        let only_marker = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir.path().join("PAYSTATE_STORE"),
            only_marker.path().join("PAYSTATE_STORE"),
        )
        .unwrap();
        assert_eq!(
            open_when_unlocked(only_marker.path()).head().unwrap(),
            Position::START
        );

        // Killed after sled created its files, before the store's marker was in the database.
        let half = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir.path().join("PAYSTATE_STORE"),
            half.path().join("PAYSTATE_STORE"),
        )
        .unwrap();
        drop(raw_when_unlocked(half.path()));
        assert_eq!(
            open_when_unlocked(half.path()).head().unwrap(),
            Position::START
        );
    }

    #[test]
    fn a_marked_directory_whose_database_has_foreign_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_when_unlocked(dir.path()));
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir.path().join("PAYSTATE_STORE"),
            other.path().join("PAYSTATE_STORE"),
        )
        .unwrap();
        {
            let db = raw_when_unlocked(other.path());
            db.insert(b"someone", b"else").unwrap();
            db.flush().unwrap();
        }
        check_refused(other.path(), |e| matches!(e, StoreError::NotAStore { .. }));
    }

    /// Appends three events to two streams (the last with a dedupe key), closes the store and
    /// hands its directory to `edit` as a raw sled database.
    async fn store_edited_on_disk(edit: impl FnOnce(&sled::Db)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open_when_unlocked(dir.path());
            store
                .append(
                    &stream("a"),
                    ExpectedVersion::NoStream,
                    vec![event("1"), event("2")],
                )
                .await
                .unwrap();
            store
                .append(
                    &stream("b"),
                    ExpectedVersion::NoStream,
                    vec![event("3").with_dedupe_key("delivery-3")],
                )
                .await
                .unwrap();
            store.close().await.unwrap();
        }
        {
            let db = raw_when_unlocked(dir.path());
            edit(&db);
            db.flush().unwrap();
        }
        dir
    }

    fn recorded_head(dir: &std::path::Path) -> String {
        std::fs::read_to_string(dir.join("durable-head")).expect("the durable head record")
    }

    #[tokio::test]
    async fn the_durable_head_is_recorded_beside_the_database() {
        let dir = store_edited_on_disk(|_| {}).await;
        let store = open_when_unlocked(dir.path());
        assert_eq!(store.refusal(), None);
        let head_hash = hex::encode(store.verify().unwrap().head_hash);
        assert_eq!(
            recorded_head(dir.path()),
            format!("paystate durable head v1\nposition 3\nhash {head_hash}\n")
        );
        store
            .append(&stream("c"), ExpectedVersion::Any, vec![event("4")])
            .await
            .unwrap();
        store.close().await.unwrap();
        assert!(
            recorded_head(dir.path()).contains("position 4\n"),
            "closing records the last head"
        );
    }

    #[tokio::test]
    async fn a_log_cut_short_below_its_recorded_head_is_read_only_and_names_the_loss() {
        // What sled's recovery leaves when the file is damaged before the last append: a
        // prefix of the log, shorter than what was acknowledged.
        let dir = store_edited_on_disk(|db| {
            let events = db.open_tree("events").unwrap();
            assert!(events.remove(3u64.to_be_bytes()).unwrap().is_some());
        })
        .await;
        let store = open_when_unlocked(dir.path());
        let refusal = store
            .refusal()
            .expect("a store that lost events refuses writes");
        assert!(
            refusal.contains(
                "the log ends at position 2, but position 3 was durable before: event 3 is lost"
            ),
            "{refusal}"
        );
        assert_eq!(store.read_all(Position::START, 10).unwrap().len(), 2);
        let refused = store
            .append(
                &stream("c"),
                ExpectedVersion::Any,
                vec![event("over the gap")],
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        store.close().await.unwrap();
        drop(store);
        assert!(
            recorded_head(dir.path()).contains("position 3\n"),
            "the loss stays on record"
        );
    }

    #[tokio::test]
    async fn a_head_whose_event_changed_is_read_only() {
        let dir = store_edited_on_disk(|_| {}).await;
        let record = recorded_head(dir.path());
        let hash_line = record.lines().last().unwrap().to_owned();
        std::fs::write(
            dir.path().join("durable-head"),
            record.replace(&hash_line, &format!("hash {}", "00".repeat(32))),
        )
        .unwrap();
        let store = open_when_unlocked(dir.path());
        let refusal = store.refusal().expect("refuses writes");
        assert!(refusal.contains("its hash differs"), "{refusal}");
    }

    #[tokio::test]
    async fn index_entries_a_crash_cut_off_are_written_again_on_open() {
        // What a crash after the last batch's chunks and before its index entries leaves.
        let dir = store_edited_on_disk(|db| {
            assert!(db
                .open_tree("stream_heads")
                .unwrap()
                .remove(b"b")
                .unwrap()
                .is_some());
            set_meta(db, "indexed_through", &2u64.to_be_bytes());
        })
        .await;
        let store = open_when_unlocked(dir.path());
        assert_eq!(
            store.dedupe_position(&stream("b"), "delivery-3").unwrap(),
            Some(Position(3))
        );
        assert_eq!(
            store.stream_version(&stream("b")).unwrap(),
            StreamVersion(1)
        );
        assert_eq!(
            store
                .read_stream(&stream("b"), StreamVersion(0), 10)
                .unwrap(),
            store.read_all(Position(2), 10).unwrap()
        );
        let again = store
            .append(
                &stream("b"),
                ExpectedVersion::Any,
                vec![event("3 again").with_dedupe_key("delivery-3")],
            )
            .await
            .unwrap();
        assert!(matches!(
            again,
            AppendOutcome::Duplicate {
                original_position: Position(3),
                ..
            }
        ));
        assert_eq!(store.verify().unwrap().first_bad, None);
    }

    #[tokio::test]
    async fn index_entries_written_again_over_ones_already_there_change_nothing() {
        // A crash after the last batch's index entries and before `indexed_through` moved.
        let dir = store_edited_on_disk(|db| {
            set_meta(db, "indexed_through", &2u64.to_be_bytes());
        })
        .await;
        let heads_before = raw_entry(dir.path(), "stream_heads", b"b");
        {
            let store = open_when_unlocked(dir.path());
            assert_eq!(
                store
                    .read_stream(&stream("b"), StreamVersion(0), 10)
                    .unwrap()
                    .len(),
                1
            );
            store.close().await.unwrap();
        }
        assert_eq!(raw_entry(dir.path(), "stream_heads", b"b"), heads_before);
    }

    #[tokio::test]
    async fn a_dedupe_hash_that_matches_is_a_duplicate_only_if_its_event_has_the_key() {
        // Stream b's entry, with the hash of another key in place of `delivery-3`'s: as if the
        // two keys shared a hash.
        let other = "delivery-9";
        let dir = store_edited_on_disk(|db| {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(other.as_bytes());
            let entry = [
                &[1u8][..],
                &1u64.to_be_bytes(),
                &[1],
                &1u64.to_be_bytes(),
                &3u64.to_be_bytes(),
                &[1],
                &digest[..8],
                &3u64.to_be_bytes(),
            ]
            .concat();
            let heads = db.open_tree("stream_heads").unwrap();
            assert!(heads.insert(b"b", entry).unwrap().is_some());
        })
        .await;
        let store = open_when_unlocked(dir.path());
        assert_eq!(store.dedupe_position(&stream("b"), other).unwrap(), None);
        let appended = store
            .append(
                &stream("b"),
                ExpectedVersion::Exact(StreamVersion(1)),
                vec![event("9").with_dedupe_key(other)],
            )
            .await
            .unwrap();
        assert_eq!(positions(&appended), (4, 4));
        assert_eq!(
            store.dedupe_position(&stream("b"), other).unwrap(),
            Some(Position(4))
        );
    }

    #[tokio::test]
    async fn a_long_stream_s_entry_is_written_once_when_it_moves_to_the_index_trees() {
        let dir = tempfile::tempdir().unwrap();
        let append_many = |from: u64, count: u64| {
            let path = dir.path().to_path_buf();
            async move {
                let store = open_when_unlocked(&path);
                for seq in from..from + count {
                    store
                        .append(
                            &stream("long"),
                            ExpectedVersion::Exact(StreamVersion(seq)),
                            vec![event("e").with_dedupe_key(format!("key-{seq}"))],
                        )
                        .await
                        .unwrap();
                }
                store.close().await.unwrap();
            }
        };
        append_many(0, 12).await;
        let moved = raw_entry(dir.path(), "stream_heads", b"long").expect("an entry");
        assert_eq!(moved[0], 2, "the stream has moved to the index trees");
        append_many(12, 5).await;
        assert_eq!(
            raw_entry(dir.path(), "stream_heads", b"long"),
            Some(moved),
            "appends after the move do not rewrite the entry"
        );
        let store = open_when_unlocked(dir.path());
        assert_eq!(
            store.stream_version(&stream("long")).unwrap(),
            StreamVersion(17)
        );
        assert_eq!(
            store.dedupe_position(&stream("long"), "key-16").unwrap(),
            Some(Position(17))
        );
        let next = store
            .append(
                &stream("long"),
                ExpectedVersion::Exact(StreamVersion(17)),
                vec![event("e")],
            )
            .await
            .unwrap();
        assert_eq!(positions(&next), (18, 18));
    }

    /// Writes a key of the store's meta tree, as a crash or an older format left it.
    fn set_meta(db: &sled::Db, key: &str, value: &[u8]) {
        db.open_tree("paystate.meta")
            .unwrap()
            .insert(key.as_bytes(), value)
            .unwrap();
    }

    fn raw_entry(dir: &std::path::Path, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
        let db = raw_when_unlocked(dir);
        let value = db.open_tree(tree).unwrap().get(key).unwrap();
        value.map(|value| value.to_vec())
    }

    /// Rewrites the index entries of the store `store_edited_on_disk` makes the way format 3
    /// kept them: a `stream_index` entry per run, a `dedupe` entry per key, no `stream_heads`.
    fn as_format_3(db: &sled::Db) {
        let run = |name: &[u8], last: u64, first: u64, position: u64| {
            let key = [name, &[0xFF], &last.to_be_bytes()].concat();
            let value = [first.to_be_bytes(), position.to_be_bytes()].concat();
            (key, value)
        };
        let stream_index = db.open_tree("stream_index").unwrap();
        for (key, value) in [run(b"a", 2, 1, 1), run(b"b", 1, 1, 3)] {
            stream_index.insert(key, value).unwrap();
        }
        db.open_tree("dedupe")
            .unwrap()
            .insert(b"delivery-3", &3u64.to_be_bytes())
            .unwrap();
        db.drop_tree("stream_heads").unwrap();
        db.drop_tree("dedupe_hashes").unwrap();
        set_meta(db, "format_version", &3u32.to_be_bytes());
    }

    #[tokio::test]
    async fn a_format_3_store_is_read_through_its_old_indexes_and_upgraded_in_place() {
        let dir = store_edited_on_disk(as_format_3).await;
        let check = |store: &SledStore, appended: bool| {
            let versions = if appended { (4, 3) } else { (2, 1) };
            assert_eq!(
                store.stream_version(&stream("a")).unwrap(),
                StreamVersion(versions.0)
            );
            assert_eq!(
                store.stream_version(&stream("b")).unwrap(),
                StreamVersion(versions.1)
            );
            assert_eq!(
                store.dedupe_position(&stream("b"), "delivery-3").unwrap(),
                Some(Position(3))
            );
            // The old dedupe tree was global; a key now belongs to its stream only.
            assert_eq!(
                store.dedupe_position(&stream("a"), "delivery-3").unwrap(),
                None
            );
            let a = store
                .read_stream(&stream("a"), StreamVersion(0), 10)
                .unwrap();
            let a_positions: Vec<u64> = a.iter().map(|e| e.position.0).collect();
            let expected: &[u64] = if appended { &[1, 2, 4, 5] } else { &[1, 2] };
            assert_eq!(a_positions, expected);
        };
        {
            let store = open_when_unlocked(dir.path());
            check(&store, false);
            let again = store
                .append(
                    &stream("b"),
                    ExpectedVersion::Any,
                    vec![event("3 again").with_dedupe_key("delivery-3")],
                )
                .await
                .unwrap();
            assert!(
                matches!(
                    again,
                    AppendOutcome::Duplicate {
                        original_position: Position(3),
                        ..
                    }
                ),
                "{again:?}"
            );
            store
                .append(
                    &stream("a"),
                    ExpectedVersion::Exact(StreamVersion(2)),
                    vec![event("4"), event("5")],
                )
                .await
                .unwrap();
            store
                .append(
                    &stream("b"),
                    ExpectedVersion::Exact(StreamVersion(1)),
                    vec![event("6").with_dedupe_key("delivery-6"), event("7")],
                )
                .await
                .unwrap();
            check(&store, true);
            store.close().await.unwrap();
        }
        let store = open_when_unlocked(dir.path());
        check(&store, true);
        assert_eq!(
            store.dedupe_position(&stream("b"), "delivery-6").unwrap(),
            Some(Position(6))
        );
        let b: Vec<u64> = store
            .read_stream(&stream("b"), StreamVersion(0), 10)
            .unwrap()
            .iter()
            .map(|e| e.position.0)
            .collect();
        assert_eq!(b, [3, 6, 7]);
        store.close().await.unwrap();
        drop(store);
        let db = raw_when_unlocked(dir.path());
        let meta = db.open_tree("paystate.meta").unwrap();
        assert_eq!(
            meta.get(b"format_version").unwrap().unwrap().as_ref(),
            paystate_store::FORMAT_VERSION.to_be_bytes()
        );
        assert!(meta.get(b"legacy_indexes").unwrap().is_some());
    }

    #[tokio::test]
    async fn a_format_1_store_opens_and_is_upgraded() {
        let dir = store_edited_on_disk(|db| {
            let meta = db.open_tree("paystate.meta").unwrap();
            meta.remove(b"indexed_through").unwrap();
            meta.insert(b"format_version", &1u32.to_be_bytes()).unwrap();
        })
        .await;
        {
            let store = open_when_unlocked(dir.path());
            assert_eq!(store.head().unwrap(), Position(3));
            assert_eq!(
                store.dedupe_position(&stream("b"), "delivery-3").unwrap(),
                Some(Position(3))
            );
            assert_eq!(
                store.stream_version(&stream("a")).unwrap(),
                StreamVersion(2)
            );
            store
                .append(
                    &stream("a"),
                    ExpectedVersion::Exact(StreamVersion(2)),
                    vec![event("4")],
                )
                .await
                .unwrap();
            store.close().await.unwrap();
        }
        let db = raw_when_unlocked(dir.path());
        let meta = db.open_tree("paystate.meta").unwrap();
        assert_eq!(
            meta.get(b"format_version").unwrap().unwrap().as_ref(),
            paystate_store::FORMAT_VERSION.to_be_bytes()
        );
        assert_eq!(
            meta.get(b"indexed_through").unwrap().unwrap().as_ref(),
            4u64.to_be_bytes()
        );
    }

    #[tokio::test]
    async fn a_format_2_projection_checkpoint_is_read_and_moves_on_the_next_commit() {
        // Format 2 kept every checkpoint in the shared `projection_checkpoints` tree.
        let dir = store_edited_on_disk(|db| {
            set_meta(db, "format_version", &2u32.to_be_bytes());
            db.open_tree("projection/views")
                .unwrap()
                .insert(b"k", b"old")
                .unwrap();
            db.open_tree("projection_checkpoints")
                .unwrap()
                .insert(b"views", &7u64.to_be_bytes())
                .unwrap();
        })
        .await;
        {
            let store = open_when_unlocked(dir.path());
            assert_eq!(
                store.projection_checkpoint("views").unwrap(),
                Some(Position(7))
            );
            store
                .commit_projection(
                    "views",
                    Position(8),
                    vec![KvOp::Put {
                        key: b"k".to_vec(),
                        value: b"new".to_vec(),
                    }],
                )
                .unwrap();
            assert_eq!(
                store.projection_checkpoint("views").unwrap(),
                Some(Position(8))
            );
            store.projection_reset("views").unwrap();
            assert_eq!(store.projection_checkpoint("views").unwrap(), None);
            store.close().await.unwrap();
        }
        let db = raw_when_unlocked(dir.path());
        assert_eq!(
            db.open_tree("paystate.meta")
                .unwrap()
                .get(b"format_version")
                .unwrap()
                .unwrap()
                .as_ref(),
            paystate_store::FORMAT_VERSION.to_be_bytes()
        );
    }

    /// A reset removes the checkpoint before the entries; a crash in between leaves entries
    /// without a checkpoint, which read as no state, and the next reset clears them.
    #[tokio::test]
    async fn a_reset_cut_off_after_its_checkpoint_leaves_no_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open_when_unlocked(dir.path());
            let entries = (0..100u32)
                .map(|n| KvOp::Put {
                    key: format!("payment/{n:03}").into_bytes(),
                    value: b"state".to_vec(),
                })
                .collect();
            store
                .commit_projection("views", Position(3), entries)
                .unwrap();
            store.close().await.unwrap();
        }
        {
            // What a reset cut off right after its first step leaves behind.
            let db = raw_when_unlocked(dir.path());
            let tree = db.open_tree("projection/views").unwrap();
            assert!(tree.remove(b"\xffcheckpoint").unwrap().is_some());
            db.flush().unwrap();
        }
        let store = open_when_unlocked(dir.path());
        assert_eq!(store.projection_checkpoint("views").unwrap(), None);
        assert_eq!(store.projection_scan("views", b"").unwrap().len(), 100);
        store.projection_reset("views").unwrap();
        assert_eq!(store.projection_scan("views", b"").unwrap(), vec![]);
        assert_eq!(store.projection_checkpoint("views").unwrap(), None);
    }

    #[tokio::test]
    async fn a_projection_key_may_not_take_the_checkpoint_s_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_when_unlocked(dir.path());
        let result = store.commit_projection(
            "views",
            Position(1),
            vec![KvOp::Put {
                key: b"\xffcheckpoint".to_vec(),
                value: 99u64.to_be_bytes().to_vec(),
            }],
        );
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
        let checkpoint_key = || KvOp::Put {
            key: b"\xffcheckpoint".to_vec(),
            value: 99u64.to_be_bytes().to_vec(),
        };
        for (entries, with_checkpoint) in [
            (vec![checkpoint_key()], vec![]),
            (vec![], vec![checkpoint_key()]),
        ] {
            let result =
                store.commit_projection_idempotent("views", Position(1), entries, with_checkpoint);
            assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
        }
        assert_eq!(store.projection_checkpoint("views").unwrap(), None);
    }

    #[tokio::test]
    async fn indexes_said_to_reach_past_the_log_leave_the_store_read_only() {
        let dir = store_edited_on_disk(|db| {
            set_meta(db, "indexed_through", &9u64.to_be_bytes());
        })
        .await;
        let store = open_when_unlocked(dir.path());
        assert_eq!(store.read_all(Position::START, 10).unwrap().len(), 3);
        let refused = store
            .append(&stream("a"), ExpectedVersion::Any, vec![event("4")])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_missing_directory_becomes_a_new_store_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("data");
        drop(open_when_unlocked(&path));
        let store = open_when_unlocked(&path);
        assert_eq!(store.head().unwrap(), Position::START);
    }
}
