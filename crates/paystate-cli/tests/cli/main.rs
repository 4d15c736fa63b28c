//! The `paystate` binary's inspection commands, run on data directories the tests build
//! through the store API (and, for the lock, next to a real `paystate serve`).

mod support;

use paystate_projections::persist::PROJECTION_NAME;
use paystate_store::{EventStore, KvOp};
use support::{chain_head, rebuilt_projections, run, run_with_input, DataDir, LogBuilder, Tamper};

fn story_dir() -> DataDir {
    let data = DataDir::empty();
    let log = LogBuilder::new(&data);
    log.story();
    log.finish();
    data
}

mod help {
    use super::*;

    #[test]
    fn every_command_has_an_example_and_the_offline_ones_say_how_they_meet_a_server() {
        for command in [
            vec!["replay"],
            vec!["audit"],
            vec!["audit", "payment"],
            vec!["audit", "provider"],
            vec!["verify"],
            vec!["export"],
            vec!["import"],
            vec!["demo"],
        ] {
            let mut args = command.clone();
            args.push("--help");
            let help = run(&args).expect_code(0);
            let example = format!("paystate {}", command.join(" "));
            assert!(
                help.stdout.contains("Example") && help.stdout.contains(&example),
                "{command:?}: no example in\n{}",
                help.stdout
            );
            assert!(
                help.stdout.contains("Exit codes"),
                "{command:?}: {}",
                help.stdout
            );
            if command != ["demo"] {
                assert!(
                    help.stdout
                        .contains("stop `paystate serve` on that directory first"),
                    "{command:?}: {}",
                    help.stdout
                );
            }
        }
    }
}

mod replay {
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
}

mod audit {
    use super::*;

    #[test]
    fn a_payment_timeline_shows_positions_facts_and_amounts_changed() {
        let data = story_dir();
        let audit = run(&[
            "audit",
            "payment",
            "vipps-test",
            "acme-order-1001",
            "--data",
            &data.arg(),
        ])
        .expect_code(0);
        let out = audit.stdout;
        for expected in [
            "Audit of payment vipps-test/acme-order-1001",
            "CAPTURED 4000 NOK (psp psp-capture-1)",
            "captured 0 -> 4000 NOK",
            "refunded 0 -> 1500 NOK",
            "authorized 0 -> 10000 NOK",
            "state CREATED -> AUTHORIZED",
            "authentic delivery received (secret version 1)",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
        // Positions of this payment's facts: receipts and facts from 4 to 11.
        for position in 4..=11 {
            assert!(
                out.contains(&format!("│ {position} ")),
                "position {position} missing in\n{out}"
            );
        }
    }

    #[test]
    fn json_output_carries_entries_changes_and_the_view() {
        let data = story_dir();
        let audit = run(&[
            "audit",
            "payment",
            "vipps-test",
            "acme-order-1001",
            "--json",
            "--data",
            &data.arg(),
        ])
        .expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
        let entries = doc["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 8);
        let capture = entries
            .iter()
            .find(|entry| entry["data"]["name"] == "CAPTURED")
            .expect("the capture fact");
        assert_eq!(capture["type"], "payment_event_recorded");
        assert!(capture["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|change| change["field"] == "aggregate.captured"
                && change["from"] == "0"
                && change["to"] == "4000 NOK"));
        assert_eq!(doc["view"]["aggregate"]["captured"], 4000);
        assert_eq!(doc["view"]["aggregate"]["refunded"], 1500);
    }

    #[test]
    fn at_a_position_shows_what_was_known_then() {
        let data = story_dir();
        // Position 9 is the capture fact: the refund (10, 11) is not known yet.
        let audit = run(&[
            "audit",
            "payment",
            "vipps-test",
            "acme-order-1001",
            "--at",
            "9",
            "--json",
            "--data",
            &data.arg(),
        ])
        .expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
        assert_eq!(doc["at"], 9);
        assert_eq!(
            doc["entries"].as_array().unwrap().last().unwrap()["position"],
            9
        );
        assert_eq!(doc["view"]["aggregate"]["captured"], 4000);
        assert_eq!(doc["view"]["aggregate"]["refunded"], 0);
    }

    #[test]
    fn as_of_a_time_shows_what_was_recorded_by_then() {
        let data = story_dir();
        let full = run(&[
            "audit",
            "payment",
            "vipps-test",
            "acme-order-1001",
            "--json",
            "--data",
            &data.arg(),
        ])
        .expect_code(0);
        let full: serde_json::Value = serde_json::from_str(&full.stdout).unwrap();
        // The recorded time of the capture fact: the refund was recorded after it.
        let capture = full["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["data"]["name"] == "CAPTURED")
            .unwrap();
        let time = capture["recorded_at"].as_str().unwrap();
        let audit = run(&[
            "audit",
            "payment",
            "vipps-test",
            "acme-order-1001",
            "--as-of",
            time,
            "--json",
            "--data",
            &data.arg(),
        ])
        .expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
        assert_eq!(doc["as_of"], time);
        assert_eq!(doc["view"]["aggregate"]["captured"], 4000);
        assert_eq!(doc["view"]["aggregate"]["refunded"], 0);

        let bad = run(&[
            "audit",
            "provider",
            "vipps-test",
            "--as-of",
            "yesterday",
            "--data",
            &data.arg(),
        ])
        .expect_code(2);
        assert!(
            bad.stderr.contains("not an RFC 3339 time"),
            "{}",
            bad.stderr
        );
    }

    #[test]
    fn a_provider_timeline_shows_its_registration() {
        let data = story_dir();
        let audit = run(&["audit", "provider", "vipps-test", "--data", &data.arg()]).expect_code(0);
        for expected in [
            "provider_created",
            "state disabled -> enabled",
            "webhook_registered",
            "webhook.secret_version none -> 1",
        ] {
            assert!(
                audit.stdout.contains(expected),
                "missing {expected:?} in\n{}",
                audit.stdout
            );
        }
        // Long summaries wrap in the table; the JSON carries them whole.
        let json = run(&[
            "audit",
            "provider",
            "vipps-test",
            "--json",
            "--data",
            &data.arg(),
        ])
        .expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let facts: Vec<&str> = doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["fact"].as_str().unwrap())
            .collect();
        assert_eq!(
            facts,
            [
                "provider vipps-test created (vipps test, MSN 123456), disabled",
                "provider enabled",
                "webhook reg-0001 registered at https://pay.example.no/webhooks/vipps/vipps-test (secret version 1, reason enabled)",
            ]
        );
        assert_eq!(doc["view"]["webhook"]["secret_version"], 1);
    }

    #[test]
    fn an_unknown_payment_is_an_error_not_an_empty_table() {
        let data = story_dir();
        let audit = run(&[
            "audit",
            "payment",
            "vipps-test",
            "no-such-order",
            "--data",
            &data.arg(),
        ])
        .expect_code(2);
        assert!(
            audit
                .stderr
                .contains("no facts recorded for payment vipps-test/no-such-order"),
            "{}",
            audit.stderr
        );
    }
}

mod verify {
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
}

mod export_import {
    use super::*;

    #[test]
    fn a_round_trip_keeps_the_chain_head_and_the_projections() {
        let original = story_dir();
        let export = run(&["export", "--data", &original.arg()]).expect_code(0);
        assert_eq!(export.stdout.lines().count(), 13);
        assert!(
            !export.stdout.contains(support::SECRET_V1),
            "an export never holds a secret"
        );

        let copy = DataDir::empty();
        let import = run_with_input(&["import", "--data", &copy.arg()], export.stdout.as_bytes())
            .expect_code(0);
        assert!(
            import.stderr.contains("imported 13 events"),
            "{}",
            import.stderr
        );

        assert_eq!(chain_head(&copy), chain_head(&original));
        assert!(rebuilt_projections(&copy)
            .differences(&rebuilt_projections(&original))
            .is_empty());
        // The import built the persisted projections too.
        run(&["replay", "--verify", "--data", &copy.arg()]).expect_code(0);
        // The export carries no secrets: the copy's chain verifies, its deliveries cannot.
        run(&["verify", "--chain-only", "--data", &copy.arg()]).expect_code(0);
        let verify = run(&["verify", "--data", &copy.arg()]).expect_code(1);
        assert!(
            verify
                .stdout
                .contains("first failing position 4 (delivery signature)")
                && verify.stdout.contains("vault holds no secrets"),
            "{}",
            verify.stdout
        );
        // And exporting the copy gives the same bytes: nothing was lost or reformatted.
        let again = run(&["export", "--data", &copy.arg()]).expect_code(0);
        assert_eq!(again.stdout, export.stdout);
    }

    #[test]
    fn export_after_writes_only_the_tail() {
        let data = story_dir();
        let tail = run(&["export", "--after", "10", "--data", &data.arg()]).expect_code(0);
        let positions: Vec<u64> = tail
            .stdout
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["position"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(positions, [11, 12, 13]);
    }

    #[test]
    fn import_refuses_a_non_empty_store_and_changes_nothing() {
        let data = story_dir();
        let export = run(&["export", "--data", &data.arg()]).expect_code(0);
        let before = chain_head(&data);
        let import = run_with_input(&["import", "--data", &data.arg()], export.stdout.as_bytes())
            .expect_code(2);
        assert!(
            import.stderr.contains("the store already holds 13 events"),
            "{}",
            import.stderr
        );
        assert_eq!(chain_head(&data), before);
    }

    #[test]
    fn import_refuses_a_broken_file_and_creates_nothing() {
        let data = story_dir();
        let export = run(&["export", "--data", &data.arg()]).expect_code(0);
        let lines: Vec<&str> = export.stdout.lines().collect();

        // A line cut short.
        let mut cut = lines.clone();
        cut[5] = &lines[5][..lines[5].len() / 2];
        let target = DataDir::empty();
        let import = run_with_input(
            &["import", "--data", &target.arg()],
            cut.join("\n").as_bytes(),
        )
        .expect_code(2);
        assert!(
            import.stderr.contains("line 6 is broken"),
            "{}",
            import.stderr
        );
        assert!(
            !target.path().exists(),
            "a refused import leaves no directory behind"
        );

        // A well-formed line whose content no longer matches its hash.
        let mut edited = lines.clone();
        // Line 9 is the capture fact, at position 9.
        let changed = lines[8].replace("4000", "4001");
        assert_ne!(changed, lines[8]);
        edited[8] = &changed;
        let import = run_with_input(
            &["import", "--data", &target.arg()],
            edited.join("\n").as_bytes(),
        )
        .expect_code(2);
        assert!(
            import.stderr.contains("import refused at position 9"),
            "{}",
            import.stderr
        );
        assert!(
            !target.path().exists(),
            "a refused import leaves no directory behind"
        );

        // A tail cannot start an empty store.
        let import = run_with_input(
            &["import", "--data", &target.arg()],
            lines[3..].join("\n").as_bytes(),
        )
        .expect_code(2);
        assert!(
            import.stderr.contains("starts at position 4"),
            "{}",
            import.stderr
        );
    }
}

mod locked {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    /// Kills the server child when the test ends, whatever happens.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn offline_commands_refuse_while_a_server_holds_the_data_directory() {
        let data = story_dir();
        let mut child = support::paystate()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data",
                &data.arg(),
            ])
            .env("PAYSTATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let server = Server(child);
        // The server logs "listening" once its store is open: wait for that line.
        let mut lines = BufReader::new(stderr).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("listening"));
        assert!(listening, "the server did not start");

        for args in [
            vec!["verify"],
            vec!["replay"],
            vec!["export"],
            vec!["audit", "provider", "vipps-test"],
        ] {
            let mut args = args;
            let data_arg = data.arg();
            args.extend(["--data", &data_arg]);
            let refused = run(&args).expect_code(2);
            assert!(
                refused
                    .stderr
                    .contains("is in use by a running paystate server; stop `paystate serve`"),
                "{args:?}: {}",
                refused.stderr
            );
        }
        drop(server);
    }
}

mod demo {
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
            "delivery rejected: content_hash_mismatch (body changed in transit)",
            "== 8. The webhook secret is rotated",
            "now uses secret version 2 (reason rotate)",
            "== Provider view (GET /providers/vipps-demo) ==",
            "== Payments (GET /payments?provider_id=vipps-demo) ==",
            "acme-order-1003",
            "== Audit timeline (paystate audit payment vipps-demo acme-order-1001) ==",
            "captured 0 -> 20000 NOK",
            "refunded 0 -> 5000 NOK",
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
}
