use super::*;
use paystate_domain::{ProviderId, Reference};
use paystate_projections::persist::{stored_payment_key, PersistedPayment};

#[test]
fn rebuilds_the_projections_and_then_verifies_them_equal() {
    let data = story_dir();
    let replay = run(&["replay", "--data", &data.arg()]).expect_code(0);
    assert!(
        replay
            .stdout
            .contains("1 provider and 2 payments from 13 events"),
        "{}",
        replay.stdout
    );
    assert!(replay.stdout.contains("events/s"), "{}", replay.stdout);

    let verify = run(&["replay", "--verify", "--data", &data.arg()]).expect_code(0);
    assert!(
        verify.stdout.contains("projections equal"),
        "{}",
        verify.stdout
    );
}

#[test]
fn verify_names_the_first_difference_with_the_persisted_projections() {
    let data = story_dir();
    run(&["replay", "--data", &data.arg()]).expect_code(0);
    // Persisted state that no fold of this log produces: a payment listed at another
    // position (not visible in its view) and a provider counting deliveries never received.
    let provider = ProviderId::parse("vipps-test").unwrap();
    let reference = Reference::parse("acme-order-1001").unwrap();
    let key = stored_payment_key(&provider, &reference);
    tamper_persisted(&data, key, |stored| {
        let mut payment = PersistedPayment::decode(&provider, &stored).unwrap();
        payment.first_position = 1;
        payment.encode()
    });
    let verify = run(&["replay", "--verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify.stdout.contains(
            "DIFFERENCE (persisted vs rebuilt): payment vipps-test/acme-order-1001 differs"
        ),
        "{}",
        verify.stdout
    );

    tamper_persisted(&data, b"provider/vipps-test".to_vec(), |stored| {
        let mut provider: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        provider["webhooks"]["accepted"] = serde_json::json!(99);
        serde_json::to_vec(&provider).unwrap()
    });
    let verify = run(&["replay", "--verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify
            .stdout
            .contains("DIFFERENCE (persisted vs rebuilt): provider vipps-test differs"),
        "{}",
        verify.stdout
    );
    assert!(
        verify
            .stdout
            .contains("provider vipps-test: webhooks.accepted persisted 99 rebuilt 5"),
        "{}",
        verify.stdout
    );

    // Replaying without --verify repairs the persisted state.
    run(&["replay", "--data", &data.arg()]).expect_code(0);
    run(&["replay", "--verify", "--data", &data.arg()]).expect_code(0);
}

/// Rewrites one persisted projection entry, keeping the checkpoint.
fn tamper_persisted(data: &DataDir, key: Vec<u8>, edit: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let store = data.open();
    let stored = store
        .projection_get(PROJECTION_NAME, &key)
        .unwrap()
        .expect("persisted");
    let value = edit(stored);
    let checkpoint = store
        .projection_checkpoint(PROJECTION_NAME)
        .unwrap()
        .unwrap();
    store
        .commit_projection(PROJECTION_NAME, checkpoint, vec![KvOp::Put { key, value }])
        .unwrap();
}

#[test]
fn verify_without_persisted_projections_is_a_difference() {
    let data = story_dir();
    let verify = run(&["replay", "--verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify.stdout.contains("no usable persisted projections"),
        "{}",
        verify.stdout
    );
}
