use super::*;

#[test]
fn an_intact_log_verifies_with_every_delivery_re_verified() {
    let data = story_dir();
    let (events, head_hash) = chain_head(&data);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(0);
    assert!(
        verify
            .stdout
            .contains(&format!("events:            {events}")),
        "{}",
        verify.stdout
    );
    assert!(
        verify
            .stdout
            .contains(&format!("chain head hash:   {head_hash}")),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains("deliveries:        5 re-verified"),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains("result:            OK"),
        "{}",
        verify.stdout
    );
}

#[test]
fn a_flipped_byte_in_a_record_fails_at_its_position() {
    let data = story_dir();
    // Position 3 is the provider's webhook_registered, appended alone.
    data.flip_byte_in_record(3);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify
            .stdout
            .contains("FAILED: first failing position 3 (hash chain)"),
        "{}",
        verify.stdout
    );
}

fn with_tampered_delivery(tamper: Tamper) -> (DataDir, u64) {
    let data = DataDir::empty();
    let log = LogBuilder::new(&data);
    log.story();
    let position = log.delivery(
        "acme-order-1002",
        "AUTHORIZED",
        "psp-create-2",
        2500,
        tamper,
    );
    log.delivery(
        "acme-order-1002",
        "CAPTURED",
        "psp-capture-2",
        2500,
        Tamper::None,
    );
    log.finish();
    (data, position.0)
}

#[test]
fn a_stored_body_changed_after_receipt_fails_at_its_position() {
    let (data, position) = with_tampered_delivery(Tamper::BodyOnly);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify
            .stdout
            .contains(&format!("1 FAILED, the first at position {position}")),
        "{}",
        verify.stdout
    );
    assert!(verify.stdout.contains("6 re-verified"), "{}", verify.stdout);
    assert!(
        verify.stdout.contains("hash chain:        intact"),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains(&format!(
            "first failing position {position} (delivery signature): the stored body does not match its x-ms-content-sha256"
        )),
        "{}",
        verify.stdout
    );
}

#[test]
fn a_changed_body_with_a_matching_content_hash_fails_on_the_signature() {
    let (data, position) = with_tampered_delivery(Tamper::BodyAndContentHash);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(1);
    assert!(
        verify.stdout.contains(&format!(
            "first failing position {position} (delivery signature): the signature does not match secret version 1"
        )),
        "{}",
        verify.stdout
    );
}

#[test]
fn without_the_secrets_only_the_chain_can_be_checked() {
    let data = story_dir();
    std::fs::remove_file(data.path().join("master.key")).unwrap();
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(2);
    assert!(verify.stderr.contains("no master key"), "{}", verify.stderr);
    let chain_only = run(&["verify", "--chain-only", "--data", &data.arg()]).expect_code(0);
    assert!(
        chain_only.stdout.contains("result:            OK"),
        "{}",
        chain_only.stdout
    );
}
