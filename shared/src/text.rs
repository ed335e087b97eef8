//! What the store derives from a message's text: its search terms and its links.

use linkify::{LinkFinder, LinkKind};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::error::{Error, Result};

/// The longest message text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Search terms indexed per message: bounds what one message costs the index.
pub const MAX_TERMS: usize = 40;
/// Links indexed per message, for the same reason.
pub const MAX_LINKS: usize = 8;
/// A word longer than this is not a search term.
const MAX_TERM_CHARS: usize = 64;
/// Words too common to find anything by (Lucene's English stop set): left out of the index, where
/// they would be a third of a chat message's entries, and out of searches alike.
const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// A message's text: at most 10,000 characters; blank only where the message carries media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: String, has_media: bool) -> Result<Self> {
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Error::bad_request(format!("message is longer than {MAX_MESSAGE_CHARS} characters")));
        }
        if text.trim().is_empty() && !has_media {
            return Err(Error::bad_request("message must not be blank"));
        }
        if text.contains('\0') {
            return Err(Error::bad_request("message must not contain NUL characters"));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The longest URL a message's media or a bookmark may hold.
pub const MAX_URL: usize = 2_048;

/// An absolute http(s) URL with a host, of at most 2,048 characters, without spaces.
pub fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|rest| rest.split(['/', '?', '#']).next().is_some_and(|host| !host.is_empty()));
    host_ok && url.len() <= MAX_URL && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Lowercase, accents folded: "Café" and "cafe" are one term.
fn fold(word: &str) -> String {
    word.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// The distinct words of `text`, folded, in order of first use; punctuation separates words.
pub fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in fold(text).split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || word.chars().count() > MAX_TERM_CHARS || out.iter().any(|w| w == word) {
            continue;
        }
        out.push(word.to_owned());
    }
    out
}

/// The distinct words of `text` a search can find, folded, in order of first use: stop words left out.
pub fn search_terms(text: &str) -> Vec<String> {
    words(text).into_iter().filter(|word| !STOP_WORDS.contains(&word.as_str())).collect()
}

/// The search terms a message is indexed under: its first `MAX_TERMS` distinct searchable words.
pub fn terms(text: &str) -> Vec<String> {
    let mut words = search_terms(text);
    words.truncate(MAX_TERMS);
    words
}

/// The http(s) URLs in `text`, each once, in order; a sentence's closing punctuation or bracket is not
/// part of a URL.
pub fn links(text: &str) -> Vec<String> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]);
    let mut out: Vec<String> = Vec::new();
    for link in finder.links(text) {
        let url = link.as_str();
        let lower = url.to_ascii_lowercase();
        if (lower.starts_with("http://") || lower.starts_with("https://")) && !out.iter().any(|u| u == url) {
            out.push(url.to_owned());
        }
        if out.len() == MAX_LINKS {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_and_accents_and_drop_punctuation() {
        assert_eq!(words("Café, CAFE! naïve... (Déjà-vu)"), ["cafe", "naive", "deja", "vu"]);
        assert_eq!(words("  ...  "), Vec::<String>::new());
        assert_eq!(terms(&"w ".repeat(5)), ["w"]);
        assert_eq!(terms("The plan is in the doc, not in the chat"), ["plan", "doc", "chat"]);
        assert_eq!(search_terms("to be or not to be"), Vec::<String>::new());
        let many: String = (0..100).map(|i| format!("word{i} ")).collect();
        assert_eq!(terms(&many).len(), MAX_TERMS);
    }

    #[test]
    fn links_stop_at_closing_punctuation_and_keep_only_http() {
        let text = "See https://example.com/a. Also (http://x.org/b) and ftp://f.org/c, https://example.com/a again";
        assert_eq!(links(text), ["https://example.com/a", "http://x.org/b"]);
    }

    #[test]
    fn web_urls_are_absolute_http() {
        assert!(is_web_url("https://example.com/a?b#c"));
        assert!(is_web_url("HTTP://x.org"));
        for bad in ["javascript:alert(1)", "https://", "https:///path", "ftp://x.org", "https://a b.org", "/relative"] {
            assert!(!is_web_url(bad), "{bad}");
        }
        assert!(!is_web_url(&format!("https://x.org/{}", "a".repeat(MAX_URL))));
    }

    #[test]
    fn message_text_limits() {
        assert!(MessageText::parse("hi".into(), false).is_ok());
        assert!(MessageText::parse("   ".into(), false).is_err());
        assert!(MessageText::parse("".into(), true).is_ok());
        assert!(MessageText::parse("x".repeat(MAX_MESSAGE_CHARS), false).is_ok());
        assert!(MessageText::parse("x".repeat(MAX_MESSAGE_CHARS + 1), false).is_err());
    }
}
