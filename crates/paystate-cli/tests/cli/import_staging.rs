//! An import into a new place is written into `.{name}.importing` next to it and renamed into
//! place only when complete: killing it half-way leaves nothing under the name asked for, and
//! the next import clears the leftover and succeeds.

use super::*;
use paystate_store::SledStore;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::OnceLock;

/// Envelopes the import writes per batch into a store it creates (`BATCH` in the command).
const BATCH: usize = 1000;

/// More than the pipe (64 KiB on Linux) and the importer's input buffer (8 KiB) can hold
/// between what the test has written and what the importer has read.
const IN_FLIGHT: usize = 128 * 1024;

/// The export of a log a little longer than one import batch, with the log's chain head.
fn export() -> &'static (String, (u64, String)) {
    static EXPORT: OnceLock<(String, (u64, String))> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let data = DataDir::empty();
        let log = LogBuilder::new(&data);
        log.many_payments(700);
        log.finish();
        let export = run(&["export", "--data", &data.arg()]).expect_code(0);
        (export.stdout, chain_head(&data))
    })
}

/// The staging directory of an import into `target`.
fn staging_of(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap().to_str().unwrap();
    target.with_file_name(format!(".{name}.importing"))
}

/// An import child, killed when the test ends whatever happens.
struct Importer {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Importer {
    fn start(data: &Path) -> Importer {
        let mut child = support::paystate()
            .args(["import", "--data"])
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the paystate binary starts");
        let stdin = child.stdin.take();
        Importer { child, stdin }
    }

    /// Writes the lines of the export until the first batch is certainly in the store: the
    /// importer reads on only after writing a batch, and the pipe accepts a byte only once
    /// there is room for it, so once bytes `IN_FLIGHT` past the end of line `BATCH` are
    /// accepted, the importer has read past that line. The input stays open, so the importer
    /// then waits for more, half-way through.
    fn feed_past_the_first_batch(&mut self) {
        let lines: Vec<&str> = export().0.lines().collect();
        let first_batch: usize = lines[..BATCH].iter().map(|line| line.len() + 1).sum();
        let mut written = 0;
        let stdin = self.stdin.as_mut().expect("input open");
        for line in &lines {
            assert!(
                line != lines.last().unwrap(),
                "the export is too short for the importer to be stopped half-way"
            );
            writeln!(stdin, "{line}").expect("the importer reads its input");
            written += line.len() + 1;
            if written >= first_batch + IN_FLIGHT {
                break;
            }
        }
        stdin.flush().expect("flushed");
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Importer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many events the store at `path` holds (it must not be in use).
fn events_in(path: &Path) -> u64 {
    SledStore::open(path).unwrap().head().unwrap().0
}

fn import_everything(data: &Path) -> support::Run {
    let data = data.display().to_string();
    run_with_input(&["import", "--data", &data], export().0.as_bytes())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn an_import_killed_half_way_into_a_new_data_directory_leaves_none() {
    let target = DataDir::empty();
    let staging = staging_of(target.path());
    let mut importer = Importer::start(target.path());
    importer.feed_past_the_first_batch();
    importer.kill();

    assert!(
        !target.path().exists(),
        "no data directory until it is complete"
    );
    assert!(
        events_in(&staging.join("store")) >= BATCH as u64,
        "the importer was stopped after writing a batch into its staging directory"
    );
    run(&["verify", "--chain-only", "--data", &target.arg()]).expect_code(2);

    let again = import_everything(target.path()).expect_code(0);
    assert!(
        again.stderr.contains("did not finish") && again.stderr.contains(".data.importing"),
        "the leftover is named: {}",
        again.stderr
    );
    assert!(!staging.exists(), "the leftover is gone");
    assert_eq!(chain_head(&target), export().1);
    assert_eq!(names_in(target.path()), ["store"]);
    run(&["replay", "--verify", "--data", &target.arg()]).expect_code(0);
}

#[test]
fn an_import_killed_half_way_into_an_existing_data_directory_leaves_no_store() {
    let target = DataDir::empty();
    std::fs::create_dir(target.path()).unwrap();
    std::fs::write(target.path().join("admin-token"), "token").unwrap();
    let staging = target.path().join(".store.importing");
    let mut importer = Importer::start(target.path());
    importer.feed_past_the_first_batch();
    importer.kill();

    assert!(
        !target.store_path().exists(),
        "no store until it is complete"
    );
    assert!(events_in(&staging.join("store")) >= BATCH as u64);

    import_everything(target.path()).expect_code(0);
    assert!(!staging.exists(), "the leftover is gone");
    assert_eq!(chain_head(&target), export().1);
    assert_eq!(names_in(target.path()), ["admin-token", "store"]);
}

#[test]
fn a_second_import_into_the_same_place_is_refused_while_the_first_runs() {
    let target = DataDir::empty();
    let staging = staging_of(target.path());
    let mut first = Importer::start(target.path());
    first.feed_past_the_first_batch();

    let second = import_everything(target.path()).expect_code(2);
    assert!(
        second.stderr.contains("another `paystate import`") && second.stderr.contains("is running"),
        "{}",
        second.stderr
    );
    assert!(!target.path().exists());
    first.kill();
    assert!(
        events_in(&staging.join("store")) >= BATCH as u64,
        "the running import's staging directory was left alone"
    );
}

#[test]
fn a_directory_in_the_way_that_is_not_a_staging_directory_is_left_alone() {
    let target = DataDir::empty();
    let in_the_way = staging_of(target.path());
    std::fs::create_dir(&in_the_way).unwrap();
    std::fs::write(in_the_way.join("notes.txt"), "someone's").unwrap();

    let refused = import_everything(target.path()).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("not a staging directory of `paystate import`"),
        "{}",
        refused.stderr
    );
    assert!(!target.path().exists());
    assert_eq!(names_in(&in_the_way), ["notes.txt"]);
}
