//! Where an import into a new place is written before it is complete.
//!
//! A store is written in batches; were the import killed half-way, a store written in place
//! would look like a real, truncated one. So an import that creates the data directory (or the
//! store inside an existing data directory) writes into `.{name}.importing` next to it, in the
//! same parent so that the final rename is atomic, syncs every file and directory in it, and
//! renames it into place only once everything was accepted, then syncs the parent. Until that
//! rename, the place the import was asked for does not exist.
//!
//! A staging directory holds the file [`MARKER_FILE`], written before anything else, naming the
//! import it belongs to. One left behind by a killed import is recognised by that file and
//! removed by the next import into the same place; anything else found under that name is left
//! alone and reported. One still in use (its store locked by a running import) is refused.

use anyhow::{bail, Context};
use paystate_store::{SledStore, StoreError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file that makes a directory recognisably a staging directory of `paystate import`.
pub const MARKER_FILE: &str = ".paystate-import";

/// The first line of [`MARKER_FILE`].
const MARKER_HEADER: &str = "paystate import staging directory";

/// A staging directory this process created and writes into.
#[derive(Debug)]
pub struct Staging {
    /// `.{name}.importing` next to `target`.
    dir: PathBuf,
    /// Where the import goes once complete; it does not exist yet.
    target: PathBuf,
    /// What is renamed to `target`: the staging directory itself (a new data directory) or the
    /// store inside it (a new store in an existing data directory).
    moved: Moved,
    /// What this process wrote into [`MARKER_FILE`], to notice another import taking over.
    marker: String,
}

/// What an import creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The whole data directory, which holds only the store.
    DataDir,
    /// The store inside a data directory that exists (with its key or token, say).
    Store,
}

/// The staging directory of an import into `target`: `.{name}.importing` in the same parent.
pub fn staging_path(target: &Path) -> anyhow::Result<PathBuf> {
    let name = target.file_name().with_context(|| {
        format!(
            "{} does not name a directory to create; pass a path that ends in a name",
            target.display()
        )
    })?;
    let mut staged = std::ffi::OsString::from(".");
    staged.push(name);
    staged.push(".importing");
    Ok(parent_of(target).join(staged))
}

/// The directory `path` is in; `.` for a bare name.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

impl Staging {
    /// Creates the staging directory of an import into `target` (which must not exist),
    /// removing one a killed import left behind. `moved` says what `target` will be.
    pub fn create(target: &Path, moved: Moved) -> anyhow::Result<Staging> {
        let dir = staging_path(target)?;
        let parent = parent_of(target);
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        if fs::symlink_metadata(&dir).is_ok() {
            clear_leftover(&dir, target)?;
        }
        // Not recursive: the directory must be new (another import may be starting). Mode
        // 0700 as `serve` creates a data directory: the log holds raw webhook bodies.
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).with_context(|| {
            format!(
                "creating the staging directory {} (is another import into {} starting?)",
                dir.display(),
                target.display()
            )
        })?;
        let marker = format!(
            "{MARKER_HEADER}\ntarget: {}\nprocess: {}\nstarted: {}\n",
            target.display(),
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        let staging = Staging {
            dir,
            target: target.to_path_buf(),
            moved,
            marker,
        };
        staging
            .write_marker()
            .with_context(|| format!("writing {}", staging.marker_path().display()))
            .inspect_err(|_| staging.discard_quietly())?;
        Ok(staging)
    }

    /// Where the store is written until the import is complete.
    pub fn store_path(&self) -> PathBuf {
        paystate_server::store::store_path(&self.dir)
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails if the staging directory is no longer the one this process created: another
    /// import removed it between its creation and the store's lock being taken.
    pub fn check_still_ours(&self) -> anyhow::Result<()> {
        match fs::read_to_string(self.marker_path()) {
            Ok(marker) if marker == self.marker => Ok(()),
            _ => bail!(
                "another `paystate import` into {} took over its staging directory {}; \
                 run one import at a time",
                self.target.display(),
                self.dir.display()
            ),
        }
    }

    /// Makes everything in the staging directory durable, then moves it into place. On an
    /// error, the staging directory is still there for [`Staging::discard`].
    pub fn commit(&self) -> anyhow::Result<()> {
        sync_tree(&self.dir).with_context(|| format!("syncing {}", self.dir.display()))?;
        if fs::symlink_metadata(&self.target).is_ok() {
            bail!(
                "{} appeared while the import ran; it is left as it is and nothing was imported",
                self.target.display()
            );
        }
        let parent = parent_of(&self.target);
        match self.moved {
            Moved::DataDir => {
                rename_and_sync(&self.dir, &self.target, parent)?;
                // The marker goes only after the rename: until then it is what lets the next
                // import recognise and remove a staging directory left by a kill. A marker
                // left in the data directory by a kill right here is harmless.
                let marker = self.target.join(MARKER_FILE);
                if let Err(error) = fs::remove_file(&marker).and_then(|()| sync_dir(&self.target)) {
                    eprintln!("warning: could not remove {}: {error}", marker.display());
                }
            }
            Moved::Store => {
                rename_and_sync(&self.store_path(), &self.target, parent)?;
                // Only the marker is left: should removing it fail, a small hidden directory
                // stays beside a complete store, harmless (and named in the warning).
                if let Err(error) = fs::remove_dir_all(&self.dir).and_then(|()| sync_dir(parent)) {
                    eprintln!("warning: could not remove {}: {error}", self.dir.display());
                }
            }
        }
        Ok(())
    }

    /// Removes the staging directory and everything in it (the import was refused).
    pub fn discard(self) {
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {error}", self.dir.display());
        }
    }

    fn discard_quietly(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }

    fn marker_path(&self) -> PathBuf {
        self.dir.join(MARKER_FILE)
    }

    fn write_marker(&self) -> io::Result<()> {
        let mut file = File::create_new(self.marker_path())?;
        file.write_all(self.marker.as_bytes())?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        sync_dir(parent_of(&self.dir))
    }
}

/// Removes a staging directory a killed import left at `dir`, if it is recognisably one and no
/// import is still writing it; refuses otherwise, touching nothing.
fn clear_leftover(dir: &Path, target: &Path) -> anyhow::Result<()> {
    let is_dir = fs::symlink_metadata(dir).is_ok_and(|meta| meta.is_dir());
    let marked = is_dir
        && fs::read_to_string(dir.join(MARKER_FILE))
            .is_ok_and(|marker| marker.lines().next() == Some(MARKER_HEADER));
    if !marked {
        // A kill between creating the directory and writing its marker leaves it empty.
        if is_dir && fs::remove_dir(dir).is_ok() {
            return Ok(());
        }
        bail!(
            "{} is in the way of the import into {}, and it is not a staging directory of \
             `paystate import` (it has no {MARKER_FILE}); nothing was changed: move it away or \
             remove it, then import again",
            dir.display(),
            target.display()
        );
    }
    let store = paystate_server::store::store_path(dir);
    if store.is_dir() {
        // Opening takes the store's lock: it fails only while another import holds it. A
        // leftover too damaged to open is removed all the same.
        if let Err(StoreError::Locked { .. }) = SledStore::open(&store) {
            bail!(
                "another `paystate import` into {} is running (it writes {}); nothing was \
                 changed: wait for it to end",
                target.display(),
                dir.display()
            );
        }
    }
    eprintln!(
        "removing {}: an earlier import into {} did not finish",
        dir.display(),
        target.display()
    );
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    sync_dir(parent_of(dir)).with_context(|| format!("syncing {}", parent_of(dir).display()))
}

fn rename_and_sync(from: &Path, to: &Path, parent: &Path) -> anyhow::Result<()> {
    fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    sync_dir(parent).with_context(|| format!("syncing {}", parent.display()))
}

/// `fsync` of every file and directory under `dir`, and of `dir` itself.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sync_tree(&entry.path())?;
        } else if kind.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// `fsync` of a directory, so that the entries created, renamed or removed in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_staging_directory_is_a_hidden_sibling() {
        assert_eq!(
            staging_path(Path::new("/srv/restored")).unwrap(),
            Path::new("/srv/.restored.importing")
        );
        assert_eq!(
            staging_path(Path::new("restored")).unwrap(),
            Path::new("./.restored.importing")
        );
        assert_eq!(
            staging_path(Path::new("/srv/data/store")).unwrap(),
            Path::new("/srv/data/.store.importing")
        );
        assert!(staging_path(Path::new("/")).is_err());
        assert!(staging_path(Path::new("restored/..")).is_err());
    }

    #[test]
    fn an_unmarked_directory_in_the_way_is_left_alone() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("restored");
        let in_the_way = staging_path(&target).unwrap();
        fs::create_dir(&in_the_way).unwrap();
        fs::write(in_the_way.join("notes.txt"), "mine").unwrap();
        let error = Staging::create(&target, Moved::DataDir).unwrap_err();
        assert!(
            format!("{error:#}").contains("not a staging directory"),
            "{error:#}"
        );
        assert_eq!(
            fs::read_to_string(in_the_way.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn a_marked_leftover_is_replaced_and_an_empty_one_too() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("restored");
        let first = Staging::create(&target, Moved::DataDir).unwrap();
        fs::write(first.dir().join("partial"), "half").unwrap();
        // As if killed: the first import never commits nor discards.
        let second = Staging::create(&target, Moved::DataDir).unwrap();
        assert!(!second.dir().join("partial").exists());
        second.check_still_ours().unwrap();
        assert!(first.check_still_ours().is_err());

        fs::remove_dir_all(second.dir()).unwrap();
        fs::create_dir(second.dir()).unwrap();
        let third = Staging::create(&target, Moved::DataDir).unwrap();
        third.check_still_ours().unwrap();
    }

    #[test]
    fn a_commit_moves_the_data_directory_without_its_marker() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("restored");
        let staging = Staging::create(&target, Moved::DataDir).unwrap();
        fs::create_dir(staging.store_path()).unwrap();
        fs::write(staging.store_path().join("db"), "records").unwrap();
        staging.commit().unwrap();
        assert_eq!(
            fs::read_to_string(target.join("store").join("db")).unwrap(),
            "records"
        );
        assert!(!target.join(MARKER_FILE).exists());
        assert!(!staging.dir().exists());
    }

    #[test]
    fn a_commit_moves_only_the_store_into_an_existing_data_directory() {
        let data = tempfile::tempdir().unwrap();
        fs::write(data.path().join("master.key"), "key").unwrap();
        let target = data.path().join("store");
        let staging = Staging::create(&target, Moved::Store).unwrap();
        assert_eq!(staging.dir(), data.path().join(".store.importing"));
        fs::create_dir(staging.store_path()).unwrap();
        fs::write(staging.store_path().join("db"), "records").unwrap();
        staging.commit().unwrap();
        assert_eq!(fs::read_to_string(target.join("db")).unwrap(), "records");
        assert!(!staging.dir().exists());
        let mut names: Vec<_> = fs::read_dir(data.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["master.key", "store"]);
    }

    #[test]
    fn a_target_that_appears_meanwhile_is_not_replaced() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("restored");
        let staging = Staging::create(&target, Moved::DataDir).unwrap();
        fs::create_dir(&target).unwrap();
        assert!(staging.commit().is_err());
        assert!(target.read_dir().unwrap().next().is_none());
        staging.discard();
        assert!(!staging_path(&target).unwrap().exists());
    }
}
