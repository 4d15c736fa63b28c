//! Architecture invariants of the domain crate that a test can hold.

/// The crate's manifest, as written.
const MANIFEST: &str = include_str!("../../Cargo.toml");

/// The names of the packages in the manifest's `[dependencies]` table.
fn dependencies() -> Vec<&'static str> {
    MANIFEST
        .lines()
        .skip_while(|line| line.trim() != "[dependencies]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split(['.', '=', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

#[test]
fn the_domain_depends_on_no_runtime_storage_or_network_crate() {
    let dependencies = dependencies();
    assert!(
        dependencies.contains(&"serde"),
        "the parser found the table: {dependencies:?}"
    );
    for forbidden in [
        "tokio",
        "axum",
        "sled",
        "hyper",
        "reqwest",
        "async-trait",
        "futures",
    ] {
        assert!(
            !dependencies.contains(&forbidden),
            "{forbidden} in {dependencies:?}"
        );
    }
}
