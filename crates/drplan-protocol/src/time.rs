//! Times and durations on the wire and in files: RFC 3339 text and integer milliseconds.

use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_rfc3339(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time `{text}`")))
}

/// Parse an RFC 3339 time, with `Z` or a numeric offset such as `+02:00`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (base, offset_secs) = split_offset(text)?;
    let utc = humantime::parse_rfc3339_weak(base).ok()?;
    // A time east of UTC (+hh:mm) is earlier in UTC.
    if offset_secs >= 0 {
        utc.checked_sub(std::time::Duration::from_secs(offset_secs as u64))
    } else {
        utc.checked_add(std::time::Duration::from_secs(offset_secs.unsigned_abs()))
    }
}

fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(base) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((base, 0));
    }
    // A numeric offset is the last six characters: `+hh:mm` / `-hh:mm`.
    if text.len() < 6 || !text.is_char_boundary(text.len() - 6) {
        return None;
    }
    let (base, offset) = text.split_at(text.len() - 6);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let hours: i64 = hours.parse().ok()?;
    let minutes: i64 = minutes.parse().ok()?;
    if hours > 23 || minutes > 59 || !base.contains('T') && !base.contains(' ') {
        return None;
    }
    Some((base, sign * (hours * 3600 + minutes * 60)))
}

/// Durations as integer milliseconds in JSON.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

pub mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_ms::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// `Option<SystemTime>` as RFC 3339 text or null.
pub mod opt_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| super::parse_rfc3339(&text).ok_or_else(|| serde::de::Error::custom("invalid RFC 3339 time")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_applied() {
        let z = parse_rfc3339("2026-11-02T10:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2026-11-02T12:00:00+02:00"), Some(z));
        assert_eq!(parse_rfc3339("2026-11-02T05:00:00-05:00"), Some(z));
        assert_eq!(parse_rfc3339("2026-11-02T10:00:00.5Z").unwrap().duration_since(z).unwrap().as_millis(), 500);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-11-02T10:00:00"), None);
    }
}
