//! The `http:` and `https:` links in plain text (comments, descriptions):
//! where they are, so that pages make them clickable and a thread lists
//! the links shared. Nothing is fetched.

/// A piece of text: a web link or plain text around links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextPart<'a> {
    /// Plain text, to be shown escaped.
    Plain(&'a str),
    /// An `http:` or `https:` link.
    Link(&'a str),
}

/// Whether a link may be made clickable: `http:` and `https:` only.
pub fn is_web_link(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("http://") && url.len() > 7)
        || (lower.starts_with("https://") && url.len() > 8)
}

/// `text` cut into plain parts and web links, in order. A link runs to
/// white space, `<`, `>` or `"`, without the punctuation that ends a
/// sentence.
pub fn split_links(text: &str) -> Vec<TextPart<'_>> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = find_link(rest) {
        let (before, from) = rest.split_at(at);
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(from.len());
        // Punctuation that ends a sentence is not part of the link.
        let trimmed = from[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'']);
        if !before.is_empty() {
            parts.push(TextPart::Plain(before));
        }
        if is_web_link(trimmed) {
            parts.push(TextPart::Link(trimmed));
        } else {
            parts.push(TextPart::Plain(trimmed));
        }
        rest = &from[trimmed.len()..];
        if trimmed.is_empty() {
            // Cannot happen (a link starts with a letter), but never loop.
            break;
        }
    }
    if !rest.is_empty() {
        parts.push(TextPart::Plain(rest));
    }
    parts
}

/// The web links of `text`, in order.
pub fn links_in(text: &str) -> Vec<&str> {
    split_links(text)
        .into_iter()
        .filter_map(|part| match part {
            TextPart::Link(link) => Some(link),
            TextPart::Plain(_) => None,
        })
        .collect()
}

/// Where the next `http://` or `https://` starts (any letter case).
fn find_link(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let http = lower.find("http://");
    let https = lower.find("https://");
    match (http, https) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_end_before_spaces_markup_and_closing_punctuation() {
        assert_eq!(
            links_in("See https://example.org/a?b=1&c=2. Not javascript:alert(1), (http://x.test)"),
            ["https://example.org/a?b=1&c=2", "http://x.test"]
        );
        assert_eq!(
            links_in("<a href=\"https://e.test/x\">"),
            ["https://e.test/x"]
        );
        assert!(links_in("http:// and ftp://x.test").is_empty());
    }
}
