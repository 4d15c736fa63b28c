//! The `vipps-sim` program: flags reach the running simulator.

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn flags_set_the_knobs_of_the_served_simulator() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vipps-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--deliveries-per-event",
            "2",
            "--registration-order",
            "reversed",
            "--registration-stagger",
            "50ms",
            "--delay",
            "1s",
            "--fail-first-attempts",
            "3",
            "--fail-mode",
            "answer-lost",
            "--sign-with-wrong-secret",
            "--decline-operations",
            "1",
            "--backoff",
            "10ms,1s",
            "--token-numbers",
            "numbers",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first_line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let base_url = first_line
        .strip_prefix("vipps-sim serving on ")
        .unwrap()
        .to_owned();

    let http = reqwest::Client::new();
    let faults: Value = http
        .get(format!("{base_url}/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        faults,
        json!({
            "deliveries_per_event": 2,
            "registration_order": "reversed",
            "registration_stagger_ms": 50,
            "reorder_within_payment_ms": 0,
            "delay_ms": 1000,
            "delay_jitter_ms": 0,
            "fail_first_attempts": 3,
            "fail_mode": "answer_lost",
            "sign_with_wrong_secret": true,
            "decline_operations": 1,
        })
    );
    let token: Value = http
        .post(format!("{base_url}/accesstoken/get"))
        .header("client_id", "c")
        .header("client_secret", "s")
        .header("Ocp-Apim-Subscription-Key", "k")
        .header("Merchant-Serial-Number", "123456")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 3600);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn help_explains_every_knob_with_an_example() {
    let output = Command::new(env!("CARGO_BIN_EXE_vipps-sim"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    // Help text is wrapped to the terminal width: compare with whitespace collapsed.
    let help = String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for flag in [
        "--listen",
        "--merchant",
        "--token-lifetime",
        "--token-numbers",
        "--backoff",
        "--give-up-after",
        "--delivery-timeout",
        "--deliveries-per-event",
        "--registration-order",
        "--registration-stagger",
        "--reorder-within-payment",
        "--delay",
        "--delay-jitter",
        "--fail-first-attempts",
        "--fail-mode",
        "--sign-with-wrong-secret",
        "--decline-operations",
    ] {
        assert!(
            help.contains(&format!("Example: {flag}")),
            "no example for {flag}"
        );
    }
}
