//! An import into a new place is written into `.{name}.importing` next to it and renamed into
//! place only when complete: killing it half-way leaves nothing under the name asked for, and
//! the next import clears the leftover and succeeds.

use super::*;
use paystate_store::SledStore;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Duration;

/// Envelopes the import writes per batch into a store it creates (`BATCH` in the command).
const BATCH: usize = 1000;

/// How long the first batch may take before the test gives up instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// The export of a log a little longer than one import batch, with the log's chain head.
fn export() -> &'static (String, (u64, String)) {
    static EXPORT: OnceLock<(String, (u64, String))> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let data = DataDir::empty();
        let log = LogBuilder::new(&data);
        log.many_payments(520);
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

/// An import child stopped half-way: fed every line of the export but the last, with its
/// input left open, so it cannot finish. Killed when the test ends, whatever happens.
struct Importer {
    child: Child,
    feeder: Option<JoinHandle<Option<ChildStdin>>>,
    /// Reads the importer's log to its end, so that its lines never meet a closed pipe.
    reader: Option<JoinHandle<()>>,
}

impl Importer {
    /// Starts an import into `data` and returns once it has logged its first batch as written
    /// to the store.
    fn past_the_first_batch(data: &Path) -> Importer {
        let mut child = support::paystate()
            .args(["import", "--data"])
            .arg(data)
            .env("PAYSTATE_LOG", "warn,paystate::commands::import=info")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the paystate binary starts");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines: Vec<&'static str> = export().0.lines().collect();
        assert!(lines.len() > BATCH, "the export fills a batch and more");
        let feeder = std::thread::spawn(move || {
            for line in &lines[..lines.len() - 1] {
                // Refused only once the importer is gone, which is what the test does next.
                writeln!(stdin, "{line}").ok()?;
            }
            stdin.flush().ok()?;
            Some(stdin)
        });
        let (logged, log) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = logged.send(line);
            }
        });
        let importer = Importer {
            child,
            feeder: Some(feeder),
            reader: Some(reader),
        };
        loop {
            match log.recv_timeout(PATIENCE) {
                Ok(line) if line.contains("import: batch written") => return importer,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no batch written within {PATIENCE:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the importer ended before writing a batch")
                }
            }
        }
    }

    fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The input is closed only now, after the kill: the importer never sees its end.
        if let Some(feeder) = self.feeder.take() {
            drop(feeder.join());
        }
        if let Some(reader) = self.reader.take() {
            drop(reader.join());
        }
    }
}

impl Drop for Importer {
    fn drop(&mut self) {
        self.stop();
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
    Importer::past_the_first_batch(target.path()).kill();

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
    Importer::past_the_first_batch(target.path()).kill();

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
    let first = Importer::past_the_first_batch(target.path());

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
