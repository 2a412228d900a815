//! Reading the shape of a block-style YAML mapping around a key from the text itself. The
//! YAML loader reports one position per error; these let a diagnostic point at the node a
//! reader looks for (where a mapping starts, where a repeated key was first written).

/// The keys of the block mapping that holds the key at `offset`, from that key upwards (byte
/// offset of each key, and its text), and the key of the parent line if there is one.
/// None when `offset` is not at a key at the start of its line (flow style `{ a: 1 }`).
pub struct BlockMapping {
    pub keys: Vec<(usize, String)>,
    pub parent: Option<String>,
}

impl BlockMapping {
    pub fn around(text: &str, offset: usize) -> Option<BlockMapping> {
        let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
        let prefix = &text[line_start..offset];
        if !prefix.chars().all(|c| c == ' ' || c == '-') {
            return None;
        }
        let indent = prefix.len();
        let mut keys = vec![(offset, key_text(&text[offset..])?)];
        // A key after `- ` opens its sequence item's mapping: nothing of it lies above.
        let mut in_mapping = !prefix.contains('-');
        let mut end = line_start;
        while end > 0 {
            let start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
            let line = &text[start..end - 1];
            end = start;
            let (column, item, rest) = split_line(line);
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            if column < indent {
                return Some(BlockMapping { keys, parent: key_text(rest) });
            }
            if in_mapping && column == indent {
                keys.push((start + column, key_text(rest)?));
                in_mapping = !item;
            }
        }
        Some(BlockMapping { keys, parent: None })
    }

    /// Where the mapping starts: its first key.
    pub fn first_key(&self) -> usize {
        self.keys.last().map_or(0, |(offset, _)| *offset)
    }

    /// The first line of this mapping that holds `key`, above the one the search started at.
    pub fn earlier(&self, key: &str) -> Option<usize> {
        self.keys.iter().skip(1).rev().find(|(_, k)| k == key).map(|(offset, _)| *offset)
    }
}

/// The column where a line's content starts after indentation and `- ` item markers, whether
/// it had such a marker, and that content.
fn split_line(line: &str) -> (usize, bool, &str) {
    let mut rest = line.trim_start_matches(' ');
    let mut item = false;
    while let Some(after) = rest.strip_prefix('-').filter(|a| a.starts_with(' ')) {
        item = true;
        rest = after.trim_start_matches(' ');
    }
    (line.len() - rest.len(), item, rest.trim_end())
}

/// The key a `key: value` line starts with (quotes removed).
fn key_text(content: &str) -> Option<String> {
    let line = content.lines().next()?;
    let (key, _) = line.split_once(':')?;
    Some(key.trim().trim_matches(['"', '\'']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_start_of_a_sequence_item_mapping_and_earlier_keys() {
        let text = "networks:\n  - source: a\n    # note\n    target: b\n    addresses: retain\n";
        let at = text.find("addresses").unwrap();
        let mapping = BlockMapping::around(text, at).unwrap();
        assert_eq!(mapping.first_key(), text.find("source").unwrap());
        assert_eq!(mapping.parent.as_deref(), Some("networks"));
        assert_eq!(mapping.earlier("target"), Some(text.find("target").unwrap()));
        assert_eq!(mapping.earlier("name"), None);
    }

    #[test]
    fn finds_the_first_of_a_repeated_key_in_a_nested_mapping() {
        let text = "sites:\n  dc1: { provider: local }\n  dc2:\n    provider: local\n  dc1: {}\nx: 1\n";
        let at = text.rfind("dc1").unwrap();
        let mapping = BlockMapping::around(text, at).unwrap();
        assert_eq!(mapping.earlier("dc1"), Some(text.find("dc1").unwrap()));
        assert_eq!(mapping.parent.as_deref(), Some("sites"));
        assert_eq!(mapping.first_key(), text.find("dc1").unwrap());
    }

    #[test]
    fn flow_style_and_odd_offsets_give_nothing() {
        let text = "sites: {a: 1, a: 2}\n";
        assert!(BlockMapping::around(text, text.rfind("a:").unwrap()).is_none());
        assert!(BlockMapping::around("é", 1).is_none());
        assert!(BlockMapping::around("a: 1", 99).is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[a-z:#' \"\n-]{0,120}|\\PC{0,60}", offset in 0usize..200) {
            if let Some(mapping) = BlockMapping::around(&text, offset) {
                proptest::prop_assert!(mapping.first_key() <= offset);
            }
        }
    }
}
