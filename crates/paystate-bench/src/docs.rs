//! Rewriting one benchmark's section of `docs/benchmarks.md`, leaving the others alone.

use anyhow::Context;
use std::path::Path;

const TITLE: &str = "# Benchmarks\n\nNumbers measured by `cargo run --release -p paystate-bench -- <name> --write-docs`. \
Each section is rewritten by its own benchmark; edit outside the markers only.\n";

/// Replaces the text between `<!-- {name}:begin -->` and `<!-- {name}:end -->` with `body`,
/// creating the file (with a title) or appending the section if either is missing.
pub fn replace_section(file: &Path, name: &str, body: &str) -> anyhow::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let current = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => TITLE.to_owned(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", file.display())),
    };
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(start), Some(stop)) if stop > start => {
            format!(
                "{}{section}{}",
                &current[..start],
                &current[stop + end.len()..]
            )
        }
        (None, None) => format!("{}\n\n{section}\n", current.trim_end()),
        _ => anyhow::bail!("{}: the {name} markers are unbalanced", file.display()),
    };
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(file, updated).with_context(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_section_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("benchmarks.md");
        replace_section(&file, "store", "first").unwrap();
        replace_section(&file, "ingest", "theirs").unwrap();
        replace_section(&file, "store", "second").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# Benchmarks"));
        assert!(text.contains("<!-- store:begin -->\nsecond\n<!-- store:end -->"));
        assert!(text.contains("<!-- ingest:begin -->\ntheirs\n<!-- ingest:end -->"));
        assert!(!text.contains("first"));
    }

    #[test]
    fn unbalanced_markers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("benchmarks.md");
        std::fs::write(&file, "<!-- store:end --> <!-- store:begin -->").unwrap();
        assert!(replace_section(&file, "store", "x").is_err());
    }
}
