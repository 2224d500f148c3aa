//! HTML escaping, for the generated pages (docs and telemetry).

/// Text safe to put inside HTML and inside a JavaScript string literal.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            '\\' => "\\\\".to_owned(),
            c => c.to_string(),
        })
        .collect()
}
