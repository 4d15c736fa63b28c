//! Progress of long commands on standard error: a bar with the rate of events per second.
//! indicatif draws only when standard error is a terminal, so scripts and tests see nothing.

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

fn with_rate(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|style| {
            style.with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.0} events/s", state.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A bar over `total` events, labelled `what` (e.g. "events exported").
pub fn events_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(with_rate(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} ({{rate}}, eta {{eta}})"
    )));
    bar
}

/// A counter of events whose total is not known in advance (a stream on standard input).
pub fn events_counter(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(with_rate(&format!("{{spinner}} {{pos}} {what} ({{rate}})")));
    bar
}
