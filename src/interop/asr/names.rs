//! drplan names for things ASR names with ARM ids, GUIDs and free text.

use std::collections::HashSet;

/// A name that matches drplan's name syntax, from any text: letters and digits kept
/// (lowercased), runs of anything else become one `-`.
pub fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let mut out: String = out.chars().take(56).collect();
    if out.is_empty() || !out.as_bytes()[0].is_ascii_alphanumeric() {
        out.insert(0, 'x');
    }
    out
}

/// A readable machine name from a protected item's ARM id: its last segment, or `vm-` and
/// the first block of a GUID.
pub fn machine_name(id: &str) -> String {
    let last = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
    if is_guid(last) { format!("vm-{}", last[..8].to_ascii_lowercase()) } else { sanitize(last) }
}

fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Hands out names, adding `-2`, `-3` … to repeats.
#[derive(Default)]
pub struct Unique {
    taken: HashSet<String>,
}

impl Unique {
    pub fn name(&mut self, wanted: String) -> String {
        let mut name = wanted.clone();
        let mut n = 1;
        while !self.taken.insert(name.clone()) {
            n += 1;
            name = format!("{wanted}-{n}");
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_drplan_syntax() {
        assert_eq!(sanitize("Check DNS / TTL"), "check-dns-ttl");
        assert_eq!(sanitize("--"), "x");
        assert_eq!(
            machine_name("/Subscriptions/x/replicationProtectedItems/f8491e4f-817a-40dd-a90c-af773978c75b"),
            "vm-f8491e4f"
        );
        assert_eq!(machine_name("/subscriptions/x/replicationProtectedItems/SQL-Prod01"), "sql-prod01");
        let mut unique = Unique::default();
        assert_eq!(unique.name("a".into()), "a");
        assert_eq!(unique.name("a".into()), "a-2");
    }
}
