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
    let import =
        run_with_input(&["import", "--data", &copy.arg()], export.stdout.as_bytes()).expect_code(0);
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
    let import =
        run_with_input(&["import", "--data", &data.arg()], export.stdout.as_bytes()).expect_code(2);
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
    assert!(
        !target.path().exists(),
        "a refused import leaves no directory behind"
    );
    let parent = target.path().parent().unwrap();
    assert_eq!(
        std::fs::read_dir(parent).unwrap().count(),
        0,
        "nor a staging directory"
    );
}

#[test]
fn a_log_longer_than_one_import_batch_round_trips_and_a_late_refusal_removes_everything() {
    let data = DataDir::empty();
    let log = LogBuilder::new(&data);
    log.many_payments(520);
    log.finish();
    let export = run(&["export", "--data", &data.arg()]).expect_code(0);
    let lines: Vec<&str> = export.stdout.lines().collect();
    assert_eq!(lines.len(), 1043);

    // Into a new directory, in batches.
    let copy = DataDir::empty();
    run_with_input(&["import", "--data", &copy.arg()], export.stdout.as_bytes()).expect_code(0);
    assert_eq!(chain_head(&copy), chain_head(&data));

    // Into an existing empty store, in one batch.
    let empty = DataDir::empty();
    drop(empty.open());
    run_with_input(
        &["import", "--data", &empty.arg()],
        export.stdout.as_bytes(),
    )
    .expect_code(0);
    assert_eq!(chain_head(&empty), chain_head(&data));

    // A record past the first batch whose hash no longer matches: refused after a batch was
    // written, and the directory created for it is gone again.
    let mut line: serde_json::Value = serde_json::from_str(lines[1020]).unwrap();
    line["hash"] = serde_json::json!(hex::encode([7u8; 32]));
    let edited_line = line.to_string();
    let mut edited = lines.clone();
    edited[1020] = &edited_line;
    let target = DataDir::empty();
    let import = run_with_input(
        &["import", "--data", &target.arg()],
        edited.join("\n").as_bytes(),
    )
    .expect_code(2);
    assert!(
        import.stderr.contains("import refused at position 1021"),
        "{}",
        import.stderr
    );
    assert!(
        !target.path().exists(),
        "a refused import leaves no directory behind"
    );
    let parent = target.path().parent().unwrap();
    assert_eq!(
        std::fs::read_dir(parent).unwrap().count(),
        0,
        "nor a staging directory"
    );
}
