//! Printing a timeline: a table for people, JSON for machines.

use super::timeline::Timeline;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;

/// The table width when the output is not a terminal.
const FALLBACK_WIDTH: u16 = 140;

/// The timeline as a table with the view it ends in, ready to print.
pub fn table(timeline: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Audit of {} (stream {}){}",
        timeline.subject,
        timeline.stream,
        cutoff_words(timeline)
    );
    if timeline.entries.is_empty() {
        let _ = writeln!(out, "no facts recorded");
        return out;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["position", "recorded", "fact", "changed"]);
    // Piped output has no terminal width; wrap long cells at a width that still reads well.
    if table.width().is_none() {
        table.set_width(FALLBACK_WIDTH);
    }
    for entry in &timeline.entries {
        let changed = if entry.changes.is_empty() {
            "-".to_owned()
        } else {
            entry
                .changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        };
        table.add_row([
            entry.position.to_string(),
            entry
                .recorded_at
                .format(&Rfc3339)
                .unwrap_or_else(|_| entry.recorded_at.to_string()),
            format!("{}\n{}", entry.event_type, entry.fact),
            changed,
        ]);
    }
    let _ = writeln!(out, "{table}");
    let _ = writeln!(out, "Resulting view:");
    let _ = writeln!(out, "{}", pretty(&timeline.view));
    if let Some(note) = timeline.note {
        let _ = writeln!(out, "{note}");
    }
    out
}

/// Where the timeline stops, in words: ", up to position 42, as of 2026-…Z", or nothing.
pub fn cutoff_words(timeline: &Timeline) -> String {
    let mut words = String::new();
    if let Some(at) = timeline.at {
        let _ = write!(words, ", up to position {at}");
    }
    if let Some(time) = timeline.as_of {
        let time = time.format(&Rfc3339).unwrap_or_else(|_| time.to_string());
        let _ = write!(words, ", as of {time}");
    }
    words
}

/// The timeline as one JSON document.
pub fn json(timeline: &Timeline) -> String {
    serde_json::to_string_pretty(timeline).unwrap_or_else(|_| "{}".to_owned())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
