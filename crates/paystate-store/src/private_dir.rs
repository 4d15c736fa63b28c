//! Directories only their owner can enter: the log holds raw webhook bodies.

use std::io;
use std::path::Path;

/// Creates `path` and any missing parents; on Unix each directory created gets mode `0700`
/// (directories that already exist keep theirs).
pub fn create_all(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_directories_are_private() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("data").join("store");
        super::create_all(&nested).unwrap();
        for dir in [root.path().join("data"), nested] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        super::create_all(root.path()).unwrap();
    }
}
