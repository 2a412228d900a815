//! Terminal colours, only when wanted (a TTY without NO_COLOR, or `--color always`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Bold,
    Dim,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Red => "31",
            Color::Green => "32",
            Color::Yellow => "33",
            Color::Blue => "34",
            Color::Magenta => "35",
            Color::Cyan => "36",
            Color::Bold => "1",
            Color::Dim => "2",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Painter {
    pub enabled: bool,
}

impl Painter {
    pub fn paint(&self, text: &str, color: Color) -> String {
        if self.enabled { format!("\x1b[{}m{text}\x1b[0m", color.code()) } else { text.to_string() }
    }
}

/// "1 step", "2 steps": a count with its noun, singular or plural.
pub fn plural(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 { format!("{n} {singular}") } else { format!("{n} {plural}") }
}
