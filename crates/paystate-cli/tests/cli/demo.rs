use super::*;

#[test]
fn tells_the_story_prints_every_section_and_leaves_a_data_directory_that_verifies() {
    let data = DataDir::empty();
    let demo = run(&["demo", "--data", &data.arg()]).expect_code(0);
    let out = &demo.stdout;
    for expected in [
        "== 1. A provider is created (disabled)",
        "== 2. It is enabled; the registration reactor registers its webhook",
        "with secret version 1 (reason enabled)",
        "== 5. Vipps delivers a webhook twice",
        "duplicate deliveries recorded: 1",
        "== 6. Vipps delivers out of order",
        "delivered in the order AUTHORIZED then CREATED",
        "== 7. Forged webhooks are rejected",
        "signed with a foreign secret: POST",
        "-> HTTP 401 {\"error\":{\"code\":\"invalid_signature\"",
        "-> HTTP 401 {\"error\":{\"code\":\"content_hash_mismatch\"",
        "delivery rejected: invalid_signature (no accepted secret, old or current, verifies it",
        "delivery rejected: content_hash_mismatch (no accepted secret signs its headers either",
        "== 8. The webhook secret is rotated",
        "now uses secret version 2 (reason rotate)",
        "== Provider view (GET /providers/vipps-demo) ==",
        "== Payments (GET /payments?provider_id=vipps-demo) ==",
        "acme-order-1003",
        "== Audit timeline (paystate audit payment vipps-demo acme-order-1001): created",
        "captured 0.00 -> 200.00 NOK",
        "refunded 0.00 -> 50.00 NOK",
        "== Audit timeline (paystate audit payment vipps-demo acme-order-1002): a duplicate",
        "webhook_duplicate",
        "authentic delivery received (secret version 2)",
        "== Next ==",
    ] {
        assert!(
            out.contains(expected),
            "missing {expected:?} in\n{out}\n--- stderr\n{}",
            demo.stderr
        );
    }

    // The directory it leaves is complete: the log verifies, deliveries under both secret
    // versions re-verify, and the persisted projections equal a rebuild.
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(0);
    assert!(
        verify.stdout.contains("vipps-demo secret v1"),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains("vipps-demo secret v2"),
        "{}",
        verify.stdout
    );
    run(&["replay", "--verify", "--data", &data.arg()]).expect_code(0);

    // The log the real server wrote survives an export and import unchanged.
    let export = run(&["export", "--data", &data.arg()]).expect_code(0);
    let copy = DataDir::empty();
    run_with_input(&["import", "--data", &copy.arg()], export.stdout.as_bytes()).expect_code(0);
    assert_eq!(chain_head(&copy), chain_head(&data));
    assert!(rebuilt_projections(&copy)
        .differences(&rebuilt_projections(&data))
        .is_empty());

    // A second run refuses the same directory rather than mixing two stories.
    let again = run(&["demo", "--data", &data.arg()]).expect_code(2);
    assert!(
        again.stderr.contains("already holds a store"),
        "{}",
        again.stderr
    );
}
