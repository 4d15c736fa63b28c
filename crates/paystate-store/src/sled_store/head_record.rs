//! A record of the durable head kept outside sled, so that a log cut short is noticed.
//!
//! sled recovers a damaged file by keeping what it can read up to the damage: one bad byte in
//! the middle of `db` can silently drop every later event, acknowledged ones included. So the
//! store also writes the position and hash of its durable head to the file `durable-head`
//! beside the database, about once a second and when it closes (a new file, synced, then
//! renamed over the old one). On open, a log that ends before that position, or whose event at
//! that position has another hash, is a log that lost acknowledged events: the store opens
//! read-only and names the loss, instead of appending new events over the gap.
//!
//! The record can only lag the truth (it names positions already durable), so a crash or a
//! power cut never trips it; events lost after the last record (at most about a second's worth)
//! go unnoticed by it.

use super::chunk::for_each_record;
use super::layout::Trees;
use crate::codec::decode_record_ref;
use crate::types::Position;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file in the store's directory.
pub(crate) const HEAD_RECORD_FILE: &str = "durable-head";
const HEADER: &str = "paystate durable head v1";

/// How often the recorder writes a changed head.
pub(crate) const RECORD_INTERVAL: Duration = Duration::from_secs(1);

/// A durable head: its position and the hash of the event there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadRecord {
    pub position: Position,
    pub hash: [u8; 32],
}

impl HeadRecord {
    fn to_text(self) -> String {
        format!(
            "{HEADER}\nposition {}\nhash {}\n",
            self.position.0,
            hex::encode(self.hash)
        )
    }

    fn parse(text: &str) -> Result<HeadRecord, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("it does not start with `{HEADER}`"));
        }
        let field = |line: Option<&str>, name: &str| -> Result<String, String> {
            line.and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("its `{name}` line is missing"))
        };
        let position = field(lines.next(), "position")?
            .parse::<u64>()
            .map_err(|_| "its position is not a number".to_owned())?;
        let hash = hex::decode(field(lines.next(), "hash")?)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| "its hash is not 64 hex digits".to_owned())?;
        Ok(HeadRecord {
            position: Position(position),
            hash,
        })
    }
}

pub(crate) fn record_path(store_dir: &Path) -> PathBuf {
    store_dir.join(HEAD_RECORD_FILE)
}

/// The recorded head, `None` when there is no record yet (a new store, or one written before
/// the record existed), an error naming what is wrong with an unreadable one.
pub(crate) fn read(store_dir: &Path) -> Result<Option<HeadRecord>, String> {
    match std::fs::read_to_string(record_path(store_dir)) {
        Ok(text) => HeadRecord::parse(&text).map(Some),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// Compares the recorded head with the log sled recovered, whose last position is `head`; the
/// reason to refuse writes if the log lost events the record saw durable.
pub(crate) fn check(store_dir: &Path, trees: &Trees, head: Position) -> Option<String> {
    let recorded = match read(store_dir) {
        Ok(Some(recorded)) => recorded,
        Ok(None) => return None,
        Err(error) => {
            return Some(format!(
                "{} is unreadable ({error}); if it was edited by hand, restore it or delete it to accept the log as it is",
                record_path(store_dir).display()
            ))
        }
    };
    let advice = "the database file was damaged; restore the data directory from a backup or an export (see docs/store.md, \"A log cut short\")";
    if recorded.position > head {
        let lost = match (head.0 + 1, recorded.position.0) {
            (first, last) if first == last => format!("event {first} is lost"),
            (first, last) => format!("events {first} to {last} are lost"),
        };
        return Some(format!(
            "the log ends at position {}, but position {} was durable before: {lost}, acknowledged ones among them; {advice}",
            head.0, recorded.position.0,
        ));
    }
    let mut found = None;
    let read = for_each_record(
        &trees.events,
        store_dir,
        recorded.position,
        recorded.position,
        |position, bytes| {
            found = Some(*decode_record_ref(position, bytes)?.hash);
            Ok(false)
        },
    );
    match (read, found) {
        (Ok(()), Some(hash)) if hash == recorded.hash => None,
        (Err(error), _) => Some(format!(
            "the event at position {}, the durable head recorded before, cannot be read ({error}); {advice}",
            recorded.position.0
        )),
        _ => Some(format!(
            "the event at position {} is not the one that was durable there before (its hash differs): the log was cut short and written again; {advice}",
            recorded.position.0
        )),
    }
}

/// Replaces the record with `head`: written to a temporary file, synced, renamed over the old
/// one, and the directory synced, so a crash leaves the old record or the new one.
pub(crate) fn write(store_dir: &Path, head: HeadRecord) -> io::Result<()> {
    let temporary = store_dir.join(format!("{HEAD_RECORD_FILE}.new"));
    let mut file = File::create(&temporary)?;
    file.write_all(head.to_text().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, record_path(store_dir))?;
    File::open(store_dir)?.sync_all()
}

/// Writes the latest durable head every [`RECORD_INTERVAL`] when it has changed, and once more
/// when `stop` disconnects (the store is closing). `latest` is set by the sync thread after
/// every durable batch; `None` while the store refuses writes, so a lost part of the log is
/// never recorded over.
pub(crate) fn run_recorder(
    store_dir: PathBuf,
    latest: Arc<Mutex<Option<HeadRecord>>>,
    mut written: Option<HeadRecord>,
    stop: Receiver<()>,
) {
    let mut failing = false;
    loop {
        let closing = match stop.recv_timeout(RECORD_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        let current = latest.lock().ok().and_then(|latest| *latest);
        if let Some(head) = current.filter(|head| Some(*head) != written) {
            match write(&store_dir, head) {
                Ok(()) => {
                    if failing {
                        tracing::info!(path = %record_path(&store_dir).display(), "the durable head is recorded again");
                    }
                    failing = false;
                    written = Some(head);
                }
                // Said once, not every second, until a write succeeds again.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(
                        path = %record_path(&store_dir).display(),
                        %error,
                        "could not record the durable head; a log cut short by damage may go unnoticed"
                    );
                }
                Err(_) => {}
            }
        }
        if closing {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(position: u64, byte: u8) -> HeadRecord {
        HeadRecord {
            position: Position(position),
            hash: [byte; 32],
        }
    }

    #[test]
    fn a_record_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Ok(None));
        write(dir.path(), head(42, 7)).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(head(42, 7))));
        write(dir.path(), head(43, 9)).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(head(43, 9))));
        let text = std::fs::read_to_string(record_path(dir.path())).unwrap();
        assert!(
            text.starts_with("paystate durable head v1\nposition 43\nhash 0909"),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("", "does not start"),
            (
                "paystate durable head v1\nposition x\nhash 00\n",
                "not a number",
            ),
            (
                "paystate durable head v1\nposition 3\n",
                "`hash` line is missing",
            ),
            (
                "paystate durable head v1\nposition 3\nhash abcd\n",
                "64 hex digits",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(record_path(dir.path()), text).unwrap();
            let error = read(dir.path()).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_recorder_writes_changes_and_the_last_head_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let latest = Arc::new(Mutex::new(Some(head(5, 1))));
        let (stop, stopped) = std::sync::mpsc::channel();
        let recorder = {
            let (dir, latest) = (dir.path().to_path_buf(), latest.clone());
            std::thread::spawn(move || run_recorder(dir, latest, None, stopped))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while read(dir.path()) != Ok(Some(head(5, 1))) {
            assert!(std::time::Instant::now() < deadline, "never recorded");
            std::thread::sleep(Duration::from_millis(20));
        }
        *latest.lock().unwrap() = Some(head(9, 2));
        drop(stop);
        recorder.join().unwrap();
        assert_eq!(read(dir.path()), Ok(Some(head(9, 2))));
    }

    #[test]
    fn nothing_is_recorded_while_the_store_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), head(30, 3)).unwrap();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        drop(stop);
        run_recorder(
            dir.path().to_path_buf(),
            Arc::new(Mutex::new(None)),
            None,
            stopped,
        );
        assert_eq!(read(dir.path()), Ok(Some(head(30, 3))));
    }
}
