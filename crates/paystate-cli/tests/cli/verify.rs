use super::*;
use crate::support::paystate;
use std::process::Stdio;

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
        verify
            .stdout
            .contains("payment facts:     5 match the delivery bodies"),
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
fn a_fact_that_does_not_say_what_its_delivery_says_fails_at_its_position() {
    let (data, position) = with_tampered_delivery(Tamper::FactOnly);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(1);
    let expected = format!(
        "FAILED: first failing position {} (payment fact): the recorded fact does not say what its delivery (position {position}) says: amount 25000 recorded, 2500 delivered",
        position + 1
    );
    assert!(verify.stdout.contains(&expected), "{}", verify.stdout);
    assert!(
        verify.stdout.contains("hash chain:        intact"),
        "{}",
        verify.stdout
    );
    // The facts need no secrets: --chain-only (an imported log) checks them too.
    let chain_only = run(&["verify", "--chain-only", "--data", &data.arg()]).expect_code(1);
    assert!(
        chain_only.stdout.contains(&expected),
        "{}",
        chain_only.stdout
    );
    // Nor do deliveries that cannot be re-verified: imported elsewhere, the log has no
    // secrets, and the result names the edited fact after the first unverifiable delivery.
    let export = run(&["export", "--data", &data.arg()]).expect_code(0);
    let copy = DataDir::empty();
    run_with_input(&["import", "--data", &copy.arg()], export.stdout.as_bytes()).expect_code(0);
    let imported = run(&["verify", "--data", &copy.arg()]).expect_code(1);
    assert!(
        imported.stdout.contains("(delivery signature)")
            && imported.stdout.contains(&format!(
                "and position {} (payment fact): the recorded fact does not say what its delivery (position {position}) says",
                position + 1
            )),
        "{}",
        imported.stdout
    );

    // Claiming the fact came from polling does not hide it: it stands in a delivery's place.
    let (data, position) = with_tampered_delivery(Tamper::FactMarkedPolled);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(1);
    let expected = format!(
        "FAILED: first failing position {} (payment fact): a fact marked as found by polling right after the delivery at position {position}",
        position + 1
    );
    assert!(verify.stdout.contains(&expected), "{}", verify.stdout);
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

#[test]
fn a_log_cut_short_below_its_recorded_head_fails_and_serve_refuses_it() {
    let data = story_dir();
    let (events, _) = chain_head(&data);
    let last = data.cut_off_last_chunk();
    assert!(last < events);
    let verify = run(&["verify", "--data", &data.arg()]).expect_code(1);
    let lost = format!(
        "DAMAGED: the log ends at position {last}, but position {events} was durable before: events {} to {events} are lost",
        last + 1
    );
    assert!(verify.stdout.contains(&lost), "{}", verify.stdout);
    assert!(
        verify.stdout.contains(&format!(
            "FAILED: first failing position {} (store)",
            last + 1
        )),
        "{}",
        verify.stdout
    );

    // A server on it would append new events over the lost ones: it refuses to start.
    let mut serve = paystate()
        .args(["serve", "--listen", ":0", "--data", &data.arg()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paystate serve starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("paystate serve started on a log that lost events");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the store is damaged") && stderr.contains(&lost[9..]),
        "{stderr}"
    );
    let (after, _) = chain_head(&data);
    assert_eq!(after, last, "nothing was appended");
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
