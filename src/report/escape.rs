//! Escaping text for HTML, shared by the HTML report and the tables it embeds. A leaf:
//! it imports nothing.

/// `s` with `&`, `<`, `>` and `"` escaped, safe inside an element or a quoted attribute.
pub fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_are_escaped_once() {
        assert_eq!(
            super::html(r#"<a href="x">&amp;</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(super::html("p99 ≤ 1 ms"), "p99 ≤ 1 ms");
    }
}
