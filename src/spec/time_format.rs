//! Times and durations in JSON and state files (the wire helpers of the provider protocol),
//! and their renderings for people.

pub use drplan_protocol::time::{deserialize, duration_ms, opt_duration_ms, opt_time, parse_rfc3339, serialize};

/// "1h 2m 3s"-style text for a duration, rounded to whole seconds (milliseconds below 1 s).
pub fn human_duration(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    humantime::format_duration(std::time::Duration::from_secs(d.as_secs_f64().round() as u64)).to_string()
}

/// "1.5 GiB"-style text for a byte count.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
