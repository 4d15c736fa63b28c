//! Making sled's writes reach the disk.
//!
//! `sled::Db::flush` in 0.34.7 writes its log buffers and issues `sync_file_range` on Linux,
//! which neither flushes the drive's write cache nor persists file-size metadata. So after
//! every flush the writer also calls `fdatasync` on the data file `{dir}/db`. sled stores
//! oversized pages as separate files in `{dir}/blobs/` without syncing them; any blob file
//! not yet synced is synced too, and then the directory that holds it.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::{blobs_dir, data_file};

#[derive(Debug)]
pub(crate) struct DiskSync {
    data_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<OsString>,
}

impl DiskSync {
    /// Opens the data file and makes the directory entries sled created durable.
    pub fn open(path: &Path) -> io::Result<DiskSync> {
        let data_file = File::open(data_file(path))?;
        File::open(path)?.sync_all()?;
        let mut sync = DiskSync {
            data_file,
            blobs_dir: blobs_dir(path),
            synced_blobs: HashSet::new(),
        };
        sync.sync()?;
        Ok(sync)
    }

    /// Call after `sled::Db::flush`: on return, everything the flush wrote is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.data_file.sync_data()?;
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&mut self) -> io::Result<()> {
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut present = HashSet::with_capacity(self.synced_blobs.len());
        let mut synced_any = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(entry.path()) {
                    Ok(file) => file.sync_all()?,
                    // sled deletes blobs it no longer needs at any time; a deleted blob is
                    // referenced by nothing that still has to be durable.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                }
                synced_any = true;
            }
            present.insert(name);
        }
        if synced_any {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        // Forget blobs sled has deleted, so the set does not grow forever.
        self.synced_blobs = present;
        Ok(())
    }
}
