//! Standard output that fails (a reader that stopped early, a full disk) ends a command with
//! exit code 2 and a message, never a panic; the demo still disables its provider.

use super::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn verify_into_a_full_disk_exits_2_with_a_message() {
    let data = story_dir();
    let full = std::fs::File::create("/dev/full").expect("/dev/full");
    let output = support::paystate()
        .args(["verify", "--data", &data.arg()])
        .stdout(Stdio::from(full))
        .output()
        .expect("the paystate binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("writing to standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_demo_whose_reader_stops_early_disables_its_provider_and_exits_2() {
    let data = DataDir::empty();
    let mut demo = support::paystate()
        .args(["demo", "--data", &data.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the paystate binary starts");
    // Read until the provider exists, then stop reading, as `paystate demo | head` does.
    let mut stdout = BufReader::new(demo.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    while !line.contains("== 2.") {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).expect("a line"),
            0,
            "the demo ended early"
        );
    }
    drop(stdout);
    let output = demo.wait_with_output().expect("the demo ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("writing to standard output"), "{stderr}");
    assert!(stderr.contains("was disabled"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let audit = run(&[
        "audit",
        "provider",
        "vipps-demo",
        "--json",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let audit: serde_json::Value = serde_json::from_str(&audit.stdout).expect("JSON");
    assert_eq!(audit["view"]["state"], "disabled", "{audit:#}");
}
