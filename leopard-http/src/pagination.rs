//! Page-number pagination with the original's envelope `{count, next, previous, results}`.
//!
//! `page` is 1-based; `page_size` defaults to 25 and may go up to 1000 (real clients ask for
//! 1000 to fill dropdowns). A page past the end answers 404 `Invalid page.` like the original;
//! a malformed number is a 400.

use axum::extract::FromRequestParts;
use http::request::Parts;
use serde::Serialize;

use crate::ApiError;

/// Default page size.
pub const DEFAULT_PAGE_SIZE: i64 = 25;
/// Largest page size a client may ask for.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// The requested page, and what is needed to link the neighbours. Extract it in a list handler,
/// query `LIMIT limit() OFFSET offset()` plus the total count, then call [`Pagination::page`].
#[derive(Debug, Clone)]
pub struct Pagination {
    page: i64,
    size: i64,
    base: String,
    query: Vec<(String, String)>,
}

/// A page of results.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// Rows matching the filters, on every page.
    pub count: i64,
    /// Absolute URL of the next page, if any.
    pub next: Option<String>,
    /// Absolute URL of the previous page, if any.
    pub previous: Option<String>,
    /// This page's rows.
    pub results: Vec<T>,
}

impl Pagination {
    /// A request for `page` (1-based) of `size` rows, linking pages under `base` (scheme, host,
    /// path) with the other query parameters `query`.
    pub fn new(page: i64, size: i64, base: String, query: Vec<(String, String)>) -> Self {
        Self {
            page: page.max(1),
            size: size.clamp(1, MAX_PAGE_SIZE),
            base,
            query,
        }
    }

    /// The same request with a resource's own page sizes: `default` when the query names no
    /// `page_size`, and never more than `max` (a larger request is capped, like DRF's
    /// `max_page_size`). Reminders use 10 and 50, like the original's notification pagination.
    #[must_use]
    pub fn sized(mut self, default: i64, max: i64) -> Self {
        let asked = self.query.iter().any(|(k, _)| k == "page_size");
        let size = if asked { self.size.min(max) } else { default };
        self.size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// The 1-based page number.
    pub fn page_number(&self) -> i64 {
        self.page
    }

    /// `LIMIT`.
    pub fn limit(&self) -> i64 {
        self.size
    }

    /// `OFFSET`.
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.size)
    }

    /// `LIMIT <limit> OFFSET <offset>` with the numbers written into the statement (they are
    /// integers of this type, never client text). Bound as parameters instead, they make
    /// PostgreSQL's generic plan of a list assume a tenth of the table per page, so the plan
    /// cache keeps choosing a custom plan and plans the statement again on every execution:
    /// 4 ms of planning for a 0.2 ms page of clients (docs/performance.md). Each page size and
    /// offset is then a statement of its own in the connection's statement cache; a list is
    /// read from its first pages nearly always.
    pub fn limit_clause(&self) -> String {
        format!("LIMIT {} OFFSET {}", self.limit(), self.offset())
    }

    /// Wraps one page of `results` out of `count`; a page past the end (other than the first)
    /// is a 404 like the original's.
    pub fn page<T>(&self, results: Vec<T>, count: i64) -> Result<Page<T>, ApiError> {
        if self.page > 1 && self.offset() >= count {
            return Err(ApiError::NotFound("Invalid page.".into()));
        }
        let next = (self.offset() + self.size < count).then(|| self.link(self.page + 1));
        let previous = (self.page > 1).then(|| self.link(self.page - 1));
        Ok(Page {
            count,
            next,
            previous,
            results,
        })
    }

    fn link(&self, page: i64) -> String {
        let mut pairs = url_encode_pairs(&self.query);
        if page > 1 {
            if !pairs.is_empty() {
                pairs.push('&');
            }
            pairs.push_str(&format!("page={page}"));
        }
        if pairs.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{pairs}", self.base)
        }
    }
}

fn url_encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The query string's pairs, decoded.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The value of query parameter `name` (`page`, `page_size`) as the extractor reads it:
/// `default` when absent or empty, a positive integer, else the 400 of field `name`. For a
/// caller that builds its [`Pagination`] itself (the web UI calling a list in-process).
pub fn parse_positive(name: &str, raw: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::field(
                name,
                format!("A positive integer is required, got {v:?}."),
            )),
        },
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs = query_pairs(parts.uri.query());
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let page = parse_positive("page", get("page"), 1)?;
        let size = parse_positive("page_size", get("page_size"), DEFAULT_PAGE_SIZE)?;
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|s| *s == "https")
            .unwrap_or("http");
        let base = format!("{scheme}://{host}{}", parts.uri.path());
        let rest = pairs.into_iter().filter(|(k, _)| k != "page").collect();
        Ok(Pagination::new(page, size, base, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(page: i64, size: i64) -> Pagination {
        Pagination::new(
            page,
            size,
            "http://acme.localhost/api/v1/users/".into(),
            vec![
                ("search".into(), "a b".into()),
                ("page_size".into(), size.to_string()),
            ],
        )
    }

    #[test]
    fn the_first_page_links_the_second_and_no_previous() {
        let page = p(1, 2).page(vec![1, 2], 5).expect("page");
        assert_eq!(page.count, 5);
        assert_eq!(page.previous, None);
        assert_eq!(
            page.next.as_deref(),
            Some("http://acme.localhost/api/v1/users/?search=a%20b&page_size=2&page=2")
        );
    }

    #[test]
    fn the_last_page_links_back_and_not_forward() {
        let page = p(3, 2).page(vec![5], 5).expect("page");
        assert_eq!(page.next, None);
        assert_eq!(
            page.previous.as_deref(),
            Some("http://acme.localhost/api/v1/users/?search=a%20b&page_size=2&page=2")
        );
        let second = p(2, 2).page(vec![3, 4], 5).expect("page");
        assert!(second
            .previous
            .as_deref()
            .is_some_and(|l| !l.contains("page=1")));
    }

    #[test]
    fn a_page_past_the_end_is_not_found_but_an_empty_first_page_is_fine() {
        assert!(matches!(
            p(4, 2).page(Vec::<i32>::new(), 5),
            Err(ApiError::NotFound(_))
        ));
        let empty = p(1, 25).page(Vec::<i32>::new(), 0).expect("page");
        assert_eq!((empty.count, empty.next, empty.previous), (0, None, None));
    }

    #[test]
    fn page_sizes_are_capped_at_one_thousand() {
        assert_eq!(p(1, 5000).limit(), MAX_PAGE_SIZE);
        assert_eq!(p(3, 10).offset(), 20);
    }

    #[test]
    fn a_resource_may_set_its_own_default_and_maximum_page_size() {
        let default = Pagination::new(1, DEFAULT_PAGE_SIZE, "http://x/".into(), vec![]);
        assert_eq!(default.sized(10, 50).limit(), 10);
        assert_eq!(p(1, 500).sized(10, 50).limit(), 50);
        assert_eq!(p(1, 20).sized(10, 50).limit(), 20);
    }

    #[test]
    fn query_pairs_are_percent_decoded() {
        assert_eq!(
            query_pairs(Some("search=a%20b&status%5B%5D=X&flag")),
            vec![
                ("search".into(), "a b".into()),
                ("status[]".into(), "X".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
