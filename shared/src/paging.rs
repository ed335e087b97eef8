//! Cursor pages: `limit` and an opaque `cursor` in, `next`/`previous` URLs out.

use axum::http::Uri;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;
/// The longest cursor: the base64 of a tag and a sort key of at most 1,024 bytes.
const MAX_CURSOR: usize = 1_400;

/// Which way a cursor points, in the order the list is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The page after the item (older, for a newest-first list).
    After,
    /// The page before the item (newer, for a newest-first list).
    Before,
}

/// A position in a list: the sort key of the item the page starts after (or ends before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub direction: Direction,
    pub sort_key: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let tag = match self.direction {
            Direction::After => 'a',
            Direction::Before => 'b',
        };
        URL_SAFE_NO_PAD.encode(format!("{tag}:{}", self.sort_key))
    }

    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::bad_request("invalid cursor");
        // A sort key holds at most 1,024 bytes: a longer cursor names nothing and never reaches the
        // table (where it would be a validation error, not a 400).
        if text.len() > MAX_CURSOR {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (direction, sort_key) = match text.split_once(':') {
            Some(("a", key)) => (Direction::After, key),
            Some(("b", key)) => (Direction::Before, key),
            _ => return Err(bad()),
        };
        if sort_key.is_empty() {
            return Err(bad());
        }
        Ok(Self { direction, sort_key: sort_key.to_owned() })
    }
}

/// `?limit=&cursor=` as a client sends them.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// A validated page request.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Error::bad_request(format!("limit must be a whole number from 1 to {MAX_LIMIT}")))?,
        };
        // An empty cursor (`?cursor=`, as a client fills in a missing `next`) is the first page.
        let cursor = self.cursor.as_deref().filter(|text| !text.is_empty()).map(Cursor::decode).transpose()?;
        Ok(PageRequest { limit, cursor })
    }
}

/// One page of items and where the neighbouring pages start.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
    pub previous: Option<Cursor>,
}

impl<T> Page<T> {
    /// The same page with each item converted; the first failure fails the page.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        let items = self.items.into_iter().map(f).collect::<Result<Vec<U>, E>>()?;
        Ok(Page { items, next: self.next, previous: self.previous })
    }

    /// A list's answer: `{count, next, previous, results}`, `results` being this page's items as
    /// shown.
    pub fn answer(&self, uri: &Uri, results: Vec<serde_json::Value>) -> serde_json::Value {
        let (next, previous) = self.links(uri);
        serde_json::json!({ "count": results.len(), "next": next, "previous": previous, "results": results })
    }

    /// The `next` and `previous` URLs: the request's own URL with its cursor replaced.
    pub fn links(&self, uri: &Uri) -> (Option<String>, Option<String>) {
        let link = |cursor: &Cursor| page_url(uri, cursor);
        (self.next.as_ref().map(link), self.previous.as_ref().map(link))
    }
}

fn page_url(uri: &Uri, cursor: &Cursor) -> String {
    let mut query: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        // The cursor takes the place of the old one, and of a page named by the message it is around.
        .filter(|pair| !pair.is_empty() && !pair.starts_with("cursor=") && !pair.starts_with("around="))
        .map(str::to_owned)
        .collect();
    query.push(format!("cursor={}", cursor.encode()));
    let base = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    };
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_garbage_is_refused() {
        let cursor = Cursor { direction: Direction::Before, sort_key: "ROOM#01J".into() };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!!", "eDpST09N", "YTo"] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
        let huge = Cursor { direction: Direction::After, sort_key: format!("MSG#{}", "x".repeat(2_000)) };
        assert!(Cursor::decode(&huge.encode()).is_err(), "a cursor no sort key can be");
    }

    #[test]
    fn limit_is_bounded() {
        let parse = |limit: &str| PageQuery { limit: Some(limit.into()), cursor: None }.parse();
        assert_eq!(parse("100").unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(PageQuery::default().parse().unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn links_keep_the_query_and_replace_the_cursor() {
        let uri: Uri = "https://api.example/api/v1/x?limit=2&cursor=old".parse().unwrap();
        let page = Page::<()> {
            items: vec![],
            next: Some(Cursor { direction: Direction::After, sort_key: "K".into() }),
            previous: None,
        };
        let (next, previous) = page.links(&uri);
        let next = next.unwrap();
        assert!(next.starts_with("https://api.example/api/v1/x?limit=2&cursor="));
        assert!(!next.contains("cursor=old"));
        assert_eq!(previous, None);
    }
}
