use super::*;

#[test]
fn rebuilds_the_projections_and_then_verifies_them_equal() {
    let data = story_dir();
    let replay = run(&["replay", "--data", &data.arg()]).expect_code(0);
    assert!(
        replay
            .stdout
            .contains("1 providers and 2 payments from 13 events"),
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
    tamper_persisted(&data, "payment/vipps-test/acme-order-1001", |entry| {
        entry["first_position"] = serde_json::json!(9999);
    });
    let verify = run(&["replay", "--verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify.stdout.contains(
            "DIFFERENCE (persisted vs rebuilt): payment vipps-test/acme-order-1001 differs"
        ),
        "{}",
        verify.stdout
    );

    tamper_persisted(&data, "provider/vipps-test", |provider| {
        provider["webhooks"]["accepted"] = serde_json::json!(99);
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
fn tamper_persisted(data: &DataDir, key: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let store = data.open();
    let key = key.as_bytes().to_vec();
    let stored = store
        .projection_get(PROJECTION_NAME, &key)
        .unwrap()
        .expect("persisted");
    let mut value: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    edit(&mut value);
    let checkpoint = store
        .projection_checkpoint(PROJECTION_NAME)
        .unwrap()
        .unwrap();
    let value = serde_json::to_vec(&value).unwrap();
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
