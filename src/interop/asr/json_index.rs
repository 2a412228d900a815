//! Where each value of a JSON text starts, by JSON pointer (`/properties/groups/0`), so that
//! a diagnostic about a value can point at its line and column. serde_json keeps no
//! positions; this scanner runs once over text serde_json already accepted.

use std::collections::HashMap;

/// Byte offsets (and lengths) of values, by JSON pointer.
#[derive(Debug, Default)]
pub struct JsonIndex {
    spans: HashMap<String, (usize, usize)>,
}

impl JsonIndex {
    /// Index `text`, which must be valid JSON (an invalid text gives a partial index).
    pub fn new(text: &str) -> JsonIndex {
        let mut scanner = Scanner { bytes: text.as_bytes(), at: 0, index: JsonIndex::default() };
        scanner.value(String::new());
        scanner.index
    }

    /// Where the value at `pointer` is, or the nearest enclosing value that is indexed.
    pub fn span(&self, pointer: &str) -> (usize, usize) {
        let mut pointer = pointer;
        loop {
            if let Some(&span) = self.spans.get(pointer) {
                return span;
            }
            match pointer.rfind('/') {
                Some(i) => pointer = &pointer[..i],
                None => return (0, 0),
            }
        }
    }
}

/// A JSON pointer's escaping of one key (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Scanner<'t> {
    bytes: &'t [u8],
    at: usize,
    index: JsonIndex,
}

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn value(&mut self, pointer: String) {
        self.skip_space();
        let start = self.at;
        match self.bytes.get(self.at) {
            Some(b'{') => self.object(&pointer),
            Some(b'[') => self.array(&pointer),
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while self.at < self.bytes.len()
                    && !matches!(self.bytes[self.at], b',' | b'}' | b']')
                    && !self.bytes[self.at].is_ascii_whitespace()
                {
                    self.at += 1;
                }
            }
            None => return,
        }
        self.index.spans.insert(pointer, (start, self.at.saturating_sub(start).max(1)));
    }

    fn object(&mut self, pointer: &str) {
        self.at += 1;
        loop {
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b'}') => {
                    self.at += 1;
                    return;
                }
                Some(b',') => self.at += 1,
                Some(b'"') => {
                    let key = self.string();
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b':') {
                        self.at += 1;
                    }
                    self.value(format!("{pointer}/{}", escape(&key)));
                }
                _ => return,
            }
        }
    }

    fn array(&mut self, pointer: &str) {
        self.at += 1;
        let mut i = 0;
        loop {
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b']') => {
                    self.at += 1;
                    return;
                }
                Some(b',') => self.at += 1,
                Some(_) => {
                    self.value(format!("{pointer}/{i}"));
                    i += 1;
                }
                None => return,
            }
        }
    }

    /// A string at `self.at` (on its opening quote): its decoded text.
    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    break;
                }
                _ => self.at += 1,
            }
        }
        let raw = &self.bytes[start..self.at.min(self.bytes.len())];
        std::str::from_utf8(raw).ok().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_pointer_with_escaped_keys_and_array_positions() {
        let text = "{\n  \"a\": [1, {\"b/c\": \"x\\\"y\"}],\n  \"d\": true\n}";
        let index = JsonIndex::new(text);
        let at = |p: &str| &text[index.span(p).0..index.span(p).0 + index.span(p).1];
        assert_eq!(at("/a/0"), "1");
        assert_eq!(at("/a/1/b~1c"), "\"x\\\"y\"");
        assert_eq!(at("/d"), "true");
        // An unknown pointer falls back to the nearest indexed parent.
        assert_eq!(index.span("/a/1/missing"), index.span("/a/1"));
    }
}
