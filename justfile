# paystate recipes. Install `just` with `cargo install just`; every recipe is a plain cargo command.

default:
    @just --list

# Run the whole test suite (what CI runs).
test:
    cargo test --workspace

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Start the server on the embedded default store (./paystate-data, 127.0.0.1:8080).
run *ARGS:
    cargo run --release -- serve {{ARGS}}

# The scripted end-to-end story: simulator + server in one process.
demo:
    cargo run --release -- demo

# Run the Vipps MobilePay simulator on its own.
sim *ARGS:
    cargo run --release -p vipps-sim -- {{ARGS}}

# Kill-and-restart durability test of the store, with more cycles than CI runs.
crash CYCLES="100":
    PAYSTATE_CRASH_CYCLES={{CYCLES}} cargo test --release -p paystate-store --test crash -- --nocapture

# Coverage-guided fuzzing of one target in fuzz/ (webhook_body, webhook_verify, router,
# stored_event) for SECONDS, without a sanitizer unless SANITIZER says one (e.g. address);
# needs `cargo install cargo-fuzz`, runs on stable via RUSTC_BOOTSTRAP.
fuzz TARGET SECONDS="150" SANITIZER="none":
    cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer {{SANITIZER}} {{TARGET}} -- -max_total_time={{SECONDS}}

# Store benchmark: raw fdatasync/s, durable appends/s at 1/8/64 appenders, read_all events/s.
bench-store:
    cargo run --release -p paystate-bench -- store --write-docs

# Every benchmark; rewrites docs/benchmarks.md.
bench:
    cargo run --release -p paystate-bench -- all --write-docs
