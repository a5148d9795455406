//! What went wrong with a scenario file, shown the way compilers report errors.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// Why a scenario could not be used. Displayed as `file:line:column: key: message`
/// followed by the offending source line, the way compilers report errors.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

#[derive(Debug)]
pub struct Invalid {
    pub origin: String,
    /// 1-based line and column, when the error has a position.
    pub position: Option<(usize, usize)>,
    /// Key path such as `strategy[1].limit`; empty for syntax errors.
    pub key: String,
    pub message: String,
    /// The source line and a caret marker under the offending span.
    pub excerpt: Option<String>,
}

impl ScenarioError {
    pub(crate) fn invalid(
        origin: &str,
        src: &str,
        span: Option<Range<usize>>,
        key: String,
        message: &str,
    ) -> ScenarioError {
        let located = span.map(|span| locate(src, span));
        ScenarioError::Invalid(Box::new(Invalid {
            origin: origin.to_string(),
            position: located.as_ref().map(|l| (l.line, l.column)),
            key,
            message: message.to_string(),
            excerpt: located.map(|l| l.excerpt),
        }))
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() && self.key != "." {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(excerpt) = &self.excerpt {
            write!(f, "\n{excerpt}")?;
        }
        Ok(())
    }
}

/// A message from the TOML reader or serde in the user's terms: no Rust type names.
pub(super) fn plain(message: &str) -> String {
    if message.starts_with("invalid boolean") || message.starts_with("invalid string") {
        return "not a value TOML knows: write a number (2), true or false, or text in quotes (\"two\")".into();
    }
    let mut out = message.replace(" as i128", "");
    for (rust, words) in [
        ("expected i64", "expected a whole number"),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected u32", "expected a whole number of 0 or more"),
        ("expected u16", "expected a whole number of 0 or more"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected f64", "expected a number"),
    ] {
        out = out.replace(rust, words);
    }
    out
}

/// The largest char boundary of `s` at or below `at` (spans from a reader may not fall
/// on one).
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

struct Located {
    line: usize,
    column: usize,
    excerpt: String,
}

fn locate(src: &str, span: Range<usize>) -> Located {
    let start = floor_char_boundary(src, span.start);
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    // The excerpt quotes the file: a password in a URL there is not repeated.
    let line_text = super::values::hide_password(src[line_start..line_end].trim_end_matches('\r'));
    let line = src[..start].matches('\n').count() + 1;
    let column = src[line_start..start].chars().count() + 1;
    let width = src[start..floor_char_boundary(src, span.end.clamp(start, line_end))]
        .chars()
        .count()
        .max(1);
    let gutter = line.to_string().len();
    let excerpt = format!(
        "{:gutter$} |\n{line} | {line_text}\n{:gutter$} | {}{}",
        "",
        "",
        " ".repeat(column - 1),
        "^".repeat(width)
    );
    Located {
        line,
        column,
        excerpt,
    }
}
