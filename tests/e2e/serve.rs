//! `paystate serve` as an operator runs it: port 0, JSON logs, a generated admin token that is
//! written to a private file and never logged, and a clean exit on SIGTERM.

use paystate_e2e::child::paystate_binary;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn serve_on_port_zero_generates_a_private_token_and_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("data directory");
    let mut child = Command::new(paystate_binary())
        .args(["serve", "--listen", ":0", "--log-format", "json", "--data"])
        .arg(data.path())
        .env_remove("PAYSTATE_ADMIN_TOKEN")
        .env_remove("PAYSTATE_MASTER_KEY")
        .env_remove("PAYSTATE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn paystate serve");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Every log line is JSON; the bound address is in the "listening" line.
    let mut seen = Vec::new();
    let address = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a log line before the server listens");
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        seen.push(line);
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["address"]
                .as_str()
                .expect("address")
                .to_owned();
        }
    };
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
    );

    let token_path = data.path().join("admin-token");
    let token = std::fs::read_to_string(&token_path).expect("the generated token file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        // The log holds raw webhook bodies: its directory is the owner's only.
        let store_mode = std::fs::metadata(data.path().join("store"))
            .expect("the store directory")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(store_mode, 0o700);
    }
    assert!(
        seen.iter()
            .any(|line| line.contains(token_path.to_str().expect("utf-8 path"))),
        "the token's path is logged"
    );

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let events = client
        .get(format!("http://{address}/events"))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("events");
    assert_eq!(
        events.status(),
        200,
        "the generated token opens the admin API"
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let exit = child.wait().expect("wait for paystate");
    assert!(exit.success(), "exit status {exit}");
    reader.join().expect("log reader");
    seen.extend(lines.try_iter());
    assert!(
        seen.iter().all(|line| !line.contains(token.trim())),
        "the token never appears in the logs"
    );
    assert!(
        seen.iter().any(|line| line.contains("stopped")),
        "a clean stop is logged"
    );

    // The store now holds a vault sealed with the generated key. Without that key (the file
    // lost, the variable forgotten), a new key would not open it: serve refuses, and writes none.
    let key_path = data.path().join("master.key");
    std::fs::remove_file(&key_path).expect("remove master.key");
    let output = Command::new(paystate_binary())
        .args(["serve", "--listen", ":0", "--data"])
        .arg(data.path())
        .env_remove("PAYSTATE_ADMIN_TOKEN")
        .env_remove("PAYSTATE_MASTER_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run paystate serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the store holds secrets sealed with a master key, but PAYSTATE_MASTER_KEY is not set"
        ),
        "{stderr}"
    );
    assert!(!key_path.exists(), "no new key was written");
}

/// Runs `paystate serve` with `args` and `env` on a fresh data directory, expecting it to refuse
/// to start without writing anything there; returns its stderr.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().expect("data directory");
    let mut command = Command::new(paystate_binary());
    command
        .args(["serve", "--listen", ":0", "--data"])
        .arg(data.path())
        .args(args)
        .env_remove("PAYSTATE_ADMIN_TOKEN")
        .env_remove("PAYSTATE_MASTER_KEY")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run paystate serve");
    assert!(!output.status.success(), "{args:?} {env:?} started");
    let left: Vec<_> = std::fs::read_dir(data.path())
        .expect("the data directory")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert!(left.is_empty(), "{args:?} {env:?} left {left:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_malformed_master_key_or_admin_token_is_refused_before_anything_is_written() {
    let stderr = refused_start(&[], &[("PAYSTATE_MASTER_KEY", "not-a-key")]);
    assert!(
        stderr.contains("PAYSTATE_MASTER_KEY: a master key must be 32 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-a-key"), "{stderr}");
    let stderr = refused_start(&[], &[("PAYSTATE_ADMIN_TOKEN", "short token")]);
    assert!(
        stderr.contains("--admin-token (PAYSTATE_ADMIN_TOKEN):"),
        "{stderr}"
    );
    assert!(!stderr.contains("short token"), "{stderr}");
}

#[test]
fn registration_timing_flags_and_their_environment_variables_are_validated() {
    let stderr = refused_start(&["--reconcile-interval-secs", "0"], &[]);
    assert!(stderr.contains("--reconcile-interval-secs"), "{stderr}");
    let stderr = refused_start(&[], &[("PAYSTATE_REGISTRATION_HANDOVER_SECS", "604801")]);
    assert!(
        stderr.contains("--registration-handover-secs (PAYSTATE_REGISTRATION_HANDOVER_SECS): it must be at most 7 days"),
        "{stderr}"
    );
    let stderr = refused_start(&["--registration-backoff-max-secs", "1"], &[]);
    assert!(
        stderr.contains("--registration-backoff-max-secs"),
        "{stderr}"
    );
    let stderr = refused_start(&[], &[("PAYSTATE_HEADER_READ_TIMEOUT_SECS", "0")]);
    assert!(stderr.contains("--header-read-timeout-secs"), "{stderr}");
    let stderr = refused_start(&[], &[("PAYSTATE_POLL_AFTER_SECS", "864000")]);
    assert!(
        stderr.contains("--poll-after-secs (PAYSTATE_POLL_AFTER_SECS): it must be between 1 second and 7 days, or 0 to turn polling off"),
        "{stderr}"
    );
    let stderr = refused_start(&["--body-limit", "10"], &[]);
    assert!(
        stderr.contains("--body-limit (PAYSTATE_BODY_LIMIT)"),
        "{stderr}"
    );
}
