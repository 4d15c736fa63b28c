//! The projection engine against the in-memory store: folding, listing, persistence,
//! rebuild equality, live following and time travel.

use paystate_domain::events::{
    DomainEvent, FactSource, IngestAnomaly, PaymentEventRecorded, ProviderCreated, WebhookAnomaly,
    WebhookDuplicate, WebhookReceived,
};
use paystate_domain::payment::PaymentState;
use paystate_domain::{
    streams, Amount, Currency, Environment, Fingerprint, HttpUrl, Msn, PaymentEventName,
    ProviderId, ProviderKind, PspReference, Reference, SecretVersion, WebhookEventType,
};
use paystate_projections::{persist, rebuild, AsOf, CommitPolicy, ProjectionsHandle};
use paystate_store::{
    EventStore, ExpectedVersion, KvOp, MemoryStore, NewEvent, Position, StreamId,
};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

fn provider_id() -> ProviderId {
    ProviderId::parse("vipps-test").unwrap()
}

fn new_event(event: DomainEvent) -> NewEvent {
    NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    )
}

async fn append(store: &dyn EventStore, stream: &str, events: Vec<DomainEvent>) -> Position {
    let outcome = store
        .append(
            &StreamId::new(stream),
            ExpectedVersion::Any,
            events.into_iter().map(new_event).collect(),
        )
        .await
        .unwrap();
    match outcome {
        paystate_store::AppendOutcome::Appended { last, .. } => last,
        other => panic!("unexpected {other:?}"),
    }
}

async fn create_provider(store: &dyn EventStore) {
    let created = DomainEvent::from(ProviderCreated {
        provider_id: provider_id(),
        kind: ProviderKind::Vipps,
        environment: Environment::Test,
        msn: Msn::parse("123456").unwrap(),
        events: WebhookEventType::all_epayment(),
        credentials_fingerprint: Fingerprint::parse("fp").unwrap(),
        public_url: HttpUrl::parse("https://pay.example.no").unwrap(),
    });
    append(
        store,
        &streams::provider_stream(&provider_id()),
        vec![created],
    )
    .await;
}

fn fact(reference: &str, name: &str, psp: &str, amount: u64) -> PaymentEventRecorded {
    PaymentEventRecorded {
        provider_id: provider_id(),
        msn: Msn::parse("123456").unwrap(),
        reference: Reference::parse(reference).unwrap(),
        psp_reference: PspReference::parse(psp).unwrap(),
        name: PaymentEventName::parse(name),
        amount: Amount::from_minor_units(amount),
        currency: Currency::parse("NOK").unwrap(),
        timestamp: OffsetDateTime::UNIX_EPOCH,
        idempotency_key: None,
        success: true,
        source: FactSource::Webhook,
        anomaly: None,
    }
}

fn receipt() -> WebhookReceived {
    serde_json::from_value(serde_json::json!({
        "provider_id": "vipps-test",
        "body_base64": "e30=",
        "signed": {"x_ms_date": "d", "x_ms_content_sha256": "h", "host": "pay.example.no",
                   "path_and_query": "/webhooks/vipps/vipps-test", "authorization_header": "authorization",
                   "signature": "s"},
        "received_at": "2025-01-14T09:30:05Z",
        "verification": {"secret_version": 1, "date_skew_seconds": 0, "older_secret": false}
    }))
    .unwrap()
}

/// Records a delivered fact the way ingestion does: receipt and fact in one append.
async fn deliver(store: &dyn EventStore, fact: PaymentEventRecorded) -> Position {
    let stream = streams::payment_stream(&fact.provider_id, &fact.reference);
    append(
        store,
        &stream,
        vec![DomainEvent::from(receipt()), DomainEvent::from(fact)],
    )
    .await
}

/// Delivers a CREATED for `count` new payments; returns where each was recorded.
async fn deliver_new_payments(store: &dyn EventStore, count: usize) -> Vec<Position> {
    let mut delivered = Vec::with_capacity(count);
    for i in 0..count {
        let reference = format!("order-{i:05}");
        delivered.push(deliver(store, fact(&reference, "CREATED", "p", 100)).await);
    }
    delivered
}

/// The checkpoint a follower with an hour-long interval committed: at or after `from` (the
/// change that reached its threshold) and before `last` (so the stop did not write it).
fn checkpoint_committed_between(
    store: &dyn EventStore,
    from: Position,
    last: Position,
) -> Position {
    let checkpoint = store
        .projection_checkpoint(persist::PROJECTION_NAME)
        .unwrap()
        .expect("committed by the change threshold, long before the hour-long interval");
    assert!(
        checkpoint >= from && checkpoint < last,
        "checkpoint {checkpoint}: not after the change that reached the threshold ({from}) and before the stop ({last})"
    );
    checkpoint
}

/// Starts the follower on `store` with `policy`; the returned sender stops it.
fn start_follower(
    handle: &ProjectionsHandle,
    store: &Arc<dyn EventStore>,
    policy: CommitPolicy,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn(paystate_projections::follow_with(
        handle.clone(),
        store.clone(),
        policy,
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, follower)
}

async fn story(store: &dyn EventStore) {
    create_provider(store).await;
    deliver(store, fact("order-0001", "CREATED", "p1", 1000)).await;
    deliver(store, fact("order-0001", "AUTHORIZED", "p1", 1000)).await;
    deliver(store, fact("order-0002", "CREATED", "p2", 500)).await;
    let duplicate = fact("order-0002", "CREATED", "p2", 500);
    let duplicate = DomainEvent::from(WebhookDuplicate {
        provider_id: provider_id(),
        original_position: 6,
        identity: duplicate.identity(),
        secret_version: SecretVersion::FIRST,
        received_at: OffsetDateTime::UNIX_EPOCH,
        conflict: None,
    });
    append(
        store,
        &streams::payment_stream(&provider_id(), &Reference::parse("order-0002").unwrap()),
        vec![duplicate],
    )
    .await;
}

#[tokio::test]
async fn views_count_deliveries_and_fold_payments() {
    let store = MemoryStore::new();
    story(&store).await;
    let projections = rebuild(&store).unwrap();
    assert_eq!(projections.applied(), store.head().unwrap());

    let provider = projections.provider_view(&provider_id()).expect("provider");
    assert_eq!(provider.webhooks.accepted, 3);
    assert_eq!(provider.webhooks.duplicates, 1);
    assert!(provider.webhooks.last_received_at.is_some());

    let one = projections
        .payment_view(&provider_id(), &Reference::parse("order-0001").unwrap())
        .unwrap();
    assert_eq!(one.state, PaymentState::Authorized);
    assert_eq!(one.events, 2);
    let two = projections
        .payment_view(&provider_id(), &Reference::parse("order-0002").unwrap())
        .unwrap();
    assert_eq!(two.duplicates, 1);

    let all = projections.list_payments(None, None, 0, 10);
    let references: Vec<&str> = all
        .payments
        .iter()
        .map(|view| view.reference.as_str())
        .collect();
    assert_eq!(references, ["order-0001", "order-0002"]);
    assert_eq!(all.next, None);
    let created =
        projections.list_payments(Some(&provider_id()), Some(PaymentState::Created), 0, 10);
    assert_eq!(created.payments.len(), 1);
    assert_eq!(created.payments[0].reference.as_str(), "order-0002");
    let first_page = projections.list_payments(None, None, 0, 1);
    let second = projections.list_payments(None, None, first_page.next.expect("more"), 1);
    assert_eq!(second.payments[0].reference.as_str(), "order-0002");
}

#[tokio::test]
async fn unknown_and_undecodable_events_are_counted_not_fatal() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    store
        .append(
            &StreamId::new("elsewhere"),
            ExpectedVersion::Any,
            vec![
                NewEvent::new("from_the_future", 1, b"{}".to_vec()),
                NewEvent::new("payment_event_recorded", 1, b"not json".to_vec()),
            ],
        )
        .await
        .unwrap();
    deliver(&store, fact("order-0003", "CREATED", "p3", 100)).await;
    let projections = rebuild(&store).unwrap();
    assert_eq!(projections.skipped().unknown_types, 1);
    assert_eq!(projections.skipped().undecodable, 1);
    assert_eq!(projections.payment_count(), 1, "later events still apply");
}

#[tokio::test]
async fn persisted_state_reloads_equal_and_catches_up_to_a_rebuild() {
    let store = MemoryStore::new();
    story(&store).await;
    let live = ProjectionsHandle::open(&store).unwrap();
    paystate_projections::catch_up(&live, &store).unwrap();
    assert_eq!(live.commit(&store).unwrap(), store.head().unwrap());

    // More events after the checkpoint: a reload resumes from it.
    deliver(&store, fact("order-0001", "CAPTURED", "c1", 400)).await;
    let reloaded = ProjectionsHandle::open(&store).unwrap();
    assert_eq!(reloaded.applied(), live.committed());
    paystate_projections::catch_up(&reloaded, &store).unwrap();
    let rebuilt = rebuild(&store).unwrap();
    assert_eq!(
        reloaded.snapshot().differences(&rebuilt),
        Vec::<String>::new()
    );
    assert_eq!(reloaded.snapshot(), rebuilt);
    let listed = reloaded.read(|p| p.list_payments(Some(&provider_id()), None, 0, 10));
    assert_eq!(
        listed.payments.len(),
        2,
        "the provider index is rebuilt on load"
    );

    // A difference is named.
    assert!(!live.snapshot().differences(&rebuilt).is_empty());
}

/// A rebuild puts payments in their stored form once many are held decoded (as the server's
/// catch-up does), to bound its memory on a long log. Payments changed after that are decoded
/// again: nothing a compacted payment held is lost, and later facts still fold into it.
#[tokio::test]
async fn a_rebuild_longer_than_the_decoded_bound_keeps_every_payment() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    // Well over the 8,192 payments a rebuild holds decoded, so that they are put in their
    // stored form at a page boundary (4,096 events) before the facts for the first ones.
    let payments = 12_000;
    deliver_new_payments(&store, payments).await;
    for i in 0..5 {
        let reference = format!("order-{i:05}");
        deliver(&store, fact(&reference, "AUTHORIZED", "a", 100)).await;
        deliver(&store, fact(&reference, "CAPTURED", "c", 40)).await;
    }

    let rebuilt = rebuild(&store).unwrap();
    assert_eq!(rebuilt.applied(), store.head().unwrap());
    assert_eq!(rebuilt.payment_count(), payments);
    let view = |i: usize| {
        rebuilt
            .payment_view(
                &provider_id(),
                &Reference::parse(&format!("order-{i:05}")).unwrap(),
            )
            .unwrap()
    };
    for i in 0..5 {
        assert_eq!(view(i).state, PaymentState::Authorized, "order-{i:05}");
        assert_eq!(view(i).events, 3, "order-{i:05}");
        assert_eq!(
            view(i).aggregate.captured,
            Amount::from_minor_units(40),
            "order-{i:05}"
        );
    }
    assert_eq!(view(5).state, PaymentState::Created);
    assert_eq!(view(payments - 1).events, 1);
    let provider = rebuilt.provider_view(&provider_id()).expect("provider");
    assert_eq!(provider.webhooks.accepted, payments as u64 + 10);
}

/// A commit writes payments and providers before its checkpoint; a crash in between leaves
/// stored entries that already hold events after the stored checkpoint. Catching up from that
/// checkpoint must count none of them twice.
#[tokio::test]
async fn entries_stored_past_their_checkpoint_are_not_folded_twice() {
    let store = MemoryStore::new();
    story(&store).await;
    let live = ProjectionsHandle::open(&store).unwrap();
    paystate_projections::catch_up(&live, &store).unwrap();
    let checkpoint = live.commit(&store).unwrap();

    // Entries as of a later commit, with the earlier checkpoint: what the crash leaves. The
    // crash came before order-0008 was written, after order-0009 was.
    deliver(&store, fact("order-0001", "CAPTURED", "c1", 400)).await;
    deliver(&store, fact("order-0008", "CREATED", "p8", 800)).await;
    deliver(&store, fact("order-0009", "CREATED", "p9", 900)).await;
    paystate_projections::catch_up(&live, &store).unwrap();
    assert!(live.commit(&store).unwrap() > checkpoint);
    let unwritten =
        persist::stored_payment_key(&provider_id(), &Reference::parse("order-0008").unwrap());
    store
        .commit_projection(
            persist::PROJECTION_NAME,
            checkpoint,
            vec![KvOp::Delete { key: unwritten }],
        )
        .unwrap();

    let reloaded = ProjectionsHandle::open(&store).unwrap();
    assert_eq!(reloaded.applied(), checkpoint);
    paystate_projections::catch_up(&reloaded, &store).unwrap();
    let rebuilt = rebuild(&store).unwrap();
    assert_eq!(
        reloaded.snapshot().differences(&rebuilt),
        Vec::<String>::new()
    );
    assert_eq!(reloaded.snapshot(), rebuilt);
    let listing = |projections: &paystate_projections::Projections| -> Vec<String> {
        projections
            .list_payments(Some(&provider_id()), None, 0, 10)
            .payments
            .iter()
            .map(|payment| payment.reference.to_string())
            .collect()
    };
    assert_eq!(
        reloaded.read(|p| listing(p)),
        listing(&rebuilt),
        "listed in the order first seen"
    );
}

#[tokio::test]
async fn state_of_another_format_is_dropped_and_rebuilt() {
    let store = MemoryStore::new();
    story(&store).await;
    store
        .commit_projection(
            persist::PROJECTION_NAME,
            Position(3),
            vec![KvOp::Put {
                key: b"meta/format".to_vec(),
                value: b"0".to_vec(),
            }],
        )
        .unwrap();
    let handle = ProjectionsHandle::open(&store).unwrap();
    assert_eq!(handle.applied(), Position(0), "starts over");
    paystate_projections::catch_up(&handle, &store).unwrap();
    assert_eq!(handle.snapshot(), rebuild(&store).unwrap());
}

#[tokio::test]
async fn the_follower_applies_live_appends_and_commits_on_stop() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    create_provider(store.as_ref()).await;
    let handle = ProjectionsHandle::open(store.as_ref()).unwrap();
    let (stop, follower) = start_follower(
        &handle,
        &store,
        CommitPolicy::every(Duration::from_secs(3600)),
    );
    let position = deliver(store.as_ref(), fact("order-0004", "CREATED", "p4", 100)).await;
    assert!(
        handle.wait_for(position, Duration::from_secs(10)).await,
        "read-your-writes"
    );
    assert!(handle.is_caught_up());
    assert!(handle.read(|p| p
        .payment(&provider_id(), &Reference::parse("order-0004").unwrap())
        .is_some()));

    stop.send(()).unwrap();
    follower.await.unwrap();
    assert_eq!(
        store
            .projection_checkpoint(persist::PROJECTION_NAME)
            .unwrap(),
        Some(position)
    );
}

#[tokio::test]
async fn a_payment_as_of_a_position_is_the_fold_of_its_prefix() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    let created = deliver(&store, fact("order-0005", "CREATED", "p5", 100)).await;
    let authorized = deliver(&store, fact("order-0005", "AUTHORIZED", "p5", 100)).await;
    let reference = Reference::parse("order-0005").unwrap();
    let at = |position| {
        paystate_projections::payment_as_of(
            &store,
            &provider_id(),
            &reference,
            AsOf::Position(position),
        )
    };
    assert_eq!(at(created).unwrap().unwrap().state, PaymentState::Created);
    assert_eq!(
        at(authorized).unwrap().unwrap().state,
        PaymentState::Authorized
    );
    assert!(at(Position(1)).unwrap().is_none());
    let history =
        paystate_projections::payment_history(&store, &provider_id(), &reference, None).unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|entry| entry.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "webhook_received",
            "payment_event_recorded",
            "webhook_received",
            "payment_event_recorded"
        ]
    );
    assert_eq!(history[1].data["name"], "CREATED");
}

#[tokio::test]
async fn state_ahead_of_the_log_is_dropped_and_rebuilt() {
    let store = MemoryStore::new();
    story(&store).await;
    let ahead = Position(store.head().unwrap().0 + 100);
    store
        .commit_projection(
            persist::PROJECTION_NAME,
            ahead,
            vec![KvOp::Put {
                key: b"meta/format".to_vec(),
                value: persist::FORMAT.to_vec(),
            }],
        )
        .unwrap();
    let handle = ProjectionsHandle::open(&store).unwrap();
    assert_eq!(handle.applied(), Position(0), "starts over");
    paystate_projections::catch_up(&handle, &store).unwrap();
    assert_eq!(handle.snapshot(), rebuild(&store).unwrap());
}

/// A first start on a long log commits as it catches up, so it never holds every payment of
/// the log changed (decoded) at once.
#[tokio::test]
async fn catching_up_commits_every_so_many_changes() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    create_provider(store.as_ref()).await;
    let delivered = deliver_new_payments(store.as_ref(), 300).await;
    let handle = ProjectionsHandle::open(store.as_ref()).unwrap();
    let policy = CommitPolicy {
        catch_up_after_changes: 64,
        ..CommitPolicy::every(Duration::from_secs(3600))
    };
    let (stop, follower) = start_follower(&handle, &store, policy);
    let last = *delivered.last().unwrap();
    assert!(handle.wait_for(last, Duration::from_secs(10)).await);

    // The provider and 63 payments reach the threshold; the 45 changes after the last full
    // round of 64 wait for the interval or the stop.
    checkpoint_committed_between(store.as_ref(), delivered[62], last);
    assert!(handle.uncommitted() < 64, "{}", handle.uncommitted());

    stop.send(()).unwrap();
    follower.await.unwrap();
    let persisted = persist::load(store.as_ref()).unwrap().expect("loadable");
    assert_eq!(persisted, rebuild(store.as_ref()).unwrap());
}

#[tokio::test]
async fn the_follower_commits_before_the_interval_once_enough_has_changed() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    create_provider(store.as_ref()).await;
    let handle = ProjectionsHandle::open(store.as_ref()).unwrap();
    let (stop, follower) = start_follower(
        &handle,
        &store,
        CommitPolicy::every(Duration::from_secs(3600)),
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while !handle.is_caught_up() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the follower catches up with the provider's creation");

    // Each delivery changes its payment and the provider: the provider and one payment fewer
    // than the threshold reach it.
    let delivered =
        deliver_new_payments(store.as_ref(), paystate_projections::COMMIT_AFTER_CHANGES).await;
    let reaching_the_threshold = delivered[paystate_projections::COMMIT_AFTER_CHANGES - 2];
    let last = *delivered.last().unwrap();
    assert!(handle.wait_for(last, Duration::from_secs(10)).await);

    let checkpoint = checkpoint_committed_between(store.as_ref(), reaching_the_threshold, last);
    let persisted = persist::load(store.as_ref()).unwrap().expect("loadable");
    assert_eq!(persisted.applied(), checkpoint);
    assert!(persisted
        .payment(&provider_id(), &Reference::parse("order-00000").unwrap())
        .is_some());

    stop.send(()).unwrap();
    follower.await.unwrap();
}

/// Every part of a payment the compact stored form holds: facts with and without an
/// idempotency key, an unknown name, an ingest anomaly on a fact, a conflicting duplicate, a
/// `webhook_anomaly` and a duplicate delivery.
async fn varied_story(store: &dyn EventStore) {
    create_provider(store).await;
    let reference = "order-0100";
    deliver(store, fact(reference, "CREATED", "p1", 1000)).await;
    let mut keyed = fact(reference, "AUTHORIZED", "p1", 1000);
    keyed.idempotency_key = Some("key-1".to_owned());
    keyed.source = FactSource::Poll;
    deliver(store, keyed).await;
    let mut odd = fact(reference, "REAUTHORIZED", "p2", 5);
    odd.anomaly = Some(IngestAnomaly::UnknownEventName {
        name: "REAUTHORIZED".to_owned(),
    });
    deliver(store, odd).await;
    // The same identity with another amount: a conflict.
    deliver(store, fact(reference, "CREATED", "p1", 999)).await;
    let anomaly = DomainEvent::from(WebhookAnomaly {
        provider_id: provider_id(),
        anomaly: IngestAnomaly::InvalidField {
            field: "amount".to_owned(),
            error: "negative".to_owned(),
        },
        reference_raw: Some(reference.to_owned()),
        received_at: OffsetDateTime::UNIX_EPOCH,
    });
    let stream = streams::payment_stream(&provider_id(), &Reference::parse(reference).unwrap());
    append(store, &stream, vec![DomainEvent::from(receipt()), anomaly]).await;
    let duplicate = DomainEvent::from(WebhookDuplicate {
        provider_id: provider_id(),
        original_position: 3,
        identity: fact(reference, "CREATED", "p1", 1000).identity(),
        secret_version: SecretVersion::FIRST,
        received_at: OffsetDateTime::UNIX_EPOCH,
        conflict: None,
    });
    append(store, &stream, vec![duplicate]).await;
    deliver(store, fact("order-0101", "CREATED", "p3", 50)).await;
}

#[tokio::test]
async fn the_compact_stored_form_keeps_every_part_of_a_payment() {
    let store = MemoryStore::new();
    varied_story(&store).await;
    let rebuilt = rebuild(&store).unwrap();
    let view = rebuilt
        .payment_view(&provider_id(), &Reference::parse("order-0100").unwrap())
        .unwrap();
    assert_eq!(view.events, 3, "{view:?}");
    assert!(view.duplicates >= 1, "{view:?}");
    assert!(view.anomalies.len() >= 3, "{view:?}");

    let mut persisted = rebuilt.clone();
    persisted.mark_all_changed();
    let live = ProjectionsHandle::new(persisted);
    live.commit(&store).unwrap();
    // Committed payments are held in their stored form now, and still equal.
    assert_eq!(live.snapshot(), rebuilt);
    assert_eq!(
        live.read(|p| p.payment_view(&provider_id(), &Reference::parse("order-0100").unwrap())),
        Some(view.clone())
    );

    let loaded = persist::load(&store).unwrap().expect("loadable");
    assert_eq!(loaded, rebuilt);
    assert!(loaded.differences(&rebuilt).is_empty());
    let as_of = paystate_projections::payment_as_of(
        &store,
        &provider_id(),
        &Reference::parse("order-0100").unwrap(),
        AsOf::Position(store.head().unwrap()),
    )
    .unwrap();
    assert_eq!(
        as_of,
        Some(view),
        "time travel at the head agrees with the live view"
    );
}

#[tokio::test]
async fn listing_is_in_first_seen_order_after_a_load_and_new_payments() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    // References in the opposite of key order, so a load reads them in reverse.
    for reference in ["order-0209", "order-0208", "order-0207"] {
        deliver(&store, fact(reference, "CREATED", "p", 100)).await;
    }
    let live = ProjectionsHandle::open(&store).unwrap();
    paystate_projections::catch_up(&live, &store).unwrap();
    live.commit(&store).unwrap();
    let reloaded = ProjectionsHandle::open(&store).unwrap();
    deliver(&store, fact("order-0206", "CREATED", "p", 100)).await;
    deliver(&store, fact("order-0208", "AUTHORIZED", "p", 100)).await;
    paystate_projections::catch_up(&reloaded, &store).unwrap();
    let listed = |state: Option<PaymentState>| -> Vec<String> {
        reloaded.read(|p| {
            p.list_payments(Some(&provider_id()), state, 0, 10)
                .payments
                .iter()
                .map(|view| view.reference.to_string())
                .collect()
        })
    };
    assert_eq!(
        listed(None),
        ["order-0209", "order-0208", "order-0207", "order-0206"]
    );
    assert_eq!(
        listed(Some(PaymentState::Created)),
        ["order-0209", "order-0207", "order-0206"]
    );
    assert_eq!(listed(Some(PaymentState::Authorized)), ["order-0208"]);
    let second = reloaded.read(|p| {
        let first = p.list_payments(None, None, 0, 2);
        p.list_payments(None, None, first.next.expect("a next page"), 2)
    });
    let references: Vec<&str> = second
        .payments
        .iter()
        .map(|v| v.reference.as_str())
        .collect();
    assert_eq!(references, ["order-0207", "order-0206"]);
    assert_eq!(reloaded.snapshot(), rebuild(&store).unwrap());
}

#[tokio::test]
async fn a_receipt_missing_a_field_is_undecodable_as_before() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    let mut bodiless = serde_json::to_value(receipt()).unwrap();
    bodiless.as_object_mut().unwrap().remove("body_base64");
    let mut bad_provider = serde_json::to_value(receipt()).unwrap();
    bad_provider["provider_id"] = serde_json::json!("Not A Provider");
    store
        .append(
            &StreamId::new("payment-vipps-test.order-0300"),
            ExpectedVersion::Any,
            [bodiless, bad_provider]
                .into_iter()
                .map(|payload| {
                    NewEvent::new("webhook_received", 1, serde_json::to_vec(&payload).unwrap())
                })
                .collect(),
        )
        .await
        .unwrap();
    deliver(&store, fact("order-0300", "CREATED", "p", 100)).await;
    let projections = rebuild(&store).unwrap();
    assert_eq!(projections.skipped().undecodable, 2);
    let provider = projections.provider_view(&provider_id()).unwrap();
    assert_eq!(
        provider.webhooks.accepted, 1,
        "only the complete receipt counts"
    );
}

#[tokio::test]
async fn a_fact_breaking_a_rule_is_undecodable_and_changes_nothing() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    let mut short_msn = serde_json::to_value(fact("order-0400", "CREATED", "p", 100)).unwrap();
    short_msn["msn"] = serde_json::json!("12");
    let mut bad_reference = serde_json::to_value(fact("order-0400", "CREATED", "p", 100)).unwrap();
    bad_reference["reference"] = serde_json::json!("no");
    store
        .append(
            &StreamId::new("payment-vipps-test.order-0400"),
            ExpectedVersion::Any,
            [short_msn, bad_reference]
                .into_iter()
                .map(|payload| {
                    NewEvent::new(
                        "payment_event_recorded",
                        1,
                        serde_json::to_vec(&payload).unwrap(),
                    )
                })
                .collect(),
        )
        .await
        .unwrap();
    let projections = rebuild(&store).unwrap();
    assert_eq!(projections.skipped().undecodable, 2);
    assert_eq!(projections.payment_count(), 0);
}

#[tokio::test]
async fn a_long_catch_up_keeps_payments_compact_and_equal() {
    let store = MemoryStore::new();
    create_provider(&store).await;
    // More payments than the handle holds decoded between two commits.
    for i in 0..8300 {
        deliver(&store, fact(&format!("order-{i:05}"), "CREATED", "p", 100)).await;
    }
    let handle = ProjectionsHandle::open(&store).unwrap();
    paystate_projections::catch_up(&handle, &store).unwrap();
    // The last page left some decoded, and a new event decodes one compacted payment.
    deliver(&store, fact("order-00001", "AUTHORIZED", "p", 100)).await;
    paystate_projections::catch_up(&handle, &store).unwrap();
    let rebuilt = rebuild(&store).unwrap();
    assert_eq!(handle.snapshot(), rebuilt);
    handle.commit(&store).unwrap();
    let loaded = persist::load(&store).unwrap().expect("loadable");
    assert_eq!(loaded, rebuilt);
    assert_eq!(
        loaded
            .payment_view(&provider_id(), &Reference::parse("order-00001").unwrap())
            .map(|view| view.state),
        Some(PaymentState::Authorized)
    );
}

#[tokio::test]
async fn a_persisted_payment_can_be_read_and_rewritten_by_its_key() {
    let store = MemoryStore::new();
    story(&store).await;
    let live = ProjectionsHandle::open(&store).unwrap();
    paystate_projections::catch_up(&live, &store).unwrap();
    let checkpoint = live.commit(&store).unwrap();
    let reference = Reference::parse("order-0001").unwrap();
    let key = persist::stored_payment_key(&provider_id(), &reference);
    let bytes = store
        .projection_get(persist::PROJECTION_NAME, &key)
        .unwrap()
        .expect("persisted under its key");
    let mut payment = persist::PersistedPayment::decode(&provider_id(), &bytes).unwrap();
    assert_eq!(payment.state, PaymentState::Authorized);
    payment.first_position = 1;
    store
        .commit_projection(
            persist::PROJECTION_NAME,
            checkpoint,
            vec![KvOp::Put {
                key,
                value: payment.encode(),
            }],
        )
        .unwrap();
    let tampered = persist::load(&store).unwrap().expect("loadable");
    assert_eq!(
        tampered.differences(&rebuild(&store).unwrap()),
        ["payment vipps-test/order-0001 differs"]
    );
}
