//! The notes of one tenant: input validation and the SQL that reads and writes them.
//!
//! Every function takes a `&mut PgConnection` that is expected to be a
//! [`leopard_tenancy::TenantTx`] (pass `&mut tx`): its `search_path` is the tenant's schema, so
//! the SQL here names `notes` unqualified and can never reach another tenant's rows. Nothing in
//! this module knows which tenant it is serving, and nothing in it commits.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgConnection;

/// The most characters a note's body may hold (the table's `CHECK` says the same).
pub const BODY_MAX_CHARS: usize = 2000;

/// How many notes [`list`] returns at most (the newest ones).
pub const LIST_LIMIT: i64 = 100;

/// A stored note, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Note {
    /// Identity within the tenant's schema (each tenant counts from 1).
    pub id: i64,
    /// The text, trimmed, 1 to [`BODY_MAX_CHARS`] characters.
    pub body: String,
    /// When the note was written.
    pub created_at: DateTime<Utc>,
}

/// A note body that satisfies the table's constraints: trimmed, 1 to [`BODY_MAX_CHARS`]
/// characters, no NUL character (PostgreSQL `text` cannot store one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteBody(String);

impl NoteBody {
    /// Validates a body as received; `None` means the field was missing (or `null`).
    ///
    /// The error is the message shown to the client for the `body` field.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw else {
            return Err("This field is required.".into());
        };
        let body = raw.trim();
        if body.is_empty() {
            return Err("This field may not be blank.".into());
        }
        // `chars()` counts code points, as PostgreSQL's `char_length` does for UTF-8.
        if body.chars().count() > BODY_MAX_CHARS {
            return Err(format!(
                "Ensure this field has no more than {BODY_MAX_CHARS} characters."
            ));
        }
        if body.contains('\0') {
            return Err("Null characters are not allowed.".into());
        }
        Ok(Self(body.to_owned()))
    }

    /// The validated text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The tenant's newest notes, newest first, at most `limit` of them.
pub async fn list(conn: &mut PgConnection, limit: i64) -> Result<Vec<Note>, sqlx::Error> {
    sqlx::query_as::<_, Note>("SELECT id, body, created_at FROM notes ORDER BY id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
}

/// Stores a note and returns it as stored.
pub async fn create(conn: &mut PgConnection, body: &NoteBody) -> Result<Note, sqlx::Error> {
    sqlx::query_as::<_, Note>("INSERT INTO notes (body) VALUES ($1) RETURNING id, body, created_at")
        .bind(body.as_str())
        .fetch_one(&mut *conn)
        .await
}

/// How many notes the tenant has.
pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_trimmed_and_kept() {
        let body = NoteBody::parse(Some("  call Ada back \n")).expect("valid");
        assert_eq!(body.as_str(), "call Ada back");
    }

    #[test]
    fn missing_blank_and_too_long_bodies_are_refused() {
        assert!(NoteBody::parse(None).is_err());
        assert!(NoteBody::parse(Some("")).is_err());
        assert!(NoteBody::parse(Some(" \t\n ")).is_err());
        assert!(NoteBody::parse(Some(&"x".repeat(BODY_MAX_CHARS + 1))).is_err());
        assert!(NoteBody::parse(Some("a\0b")).is_err());
    }

    #[test]
    fn the_length_limit_counts_characters_not_bytes() {
        let accented = "é".repeat(BODY_MAX_CHARS);
        assert!(accented.len() > BODY_MAX_CHARS);
        assert!(NoteBody::parse(Some(&accented)).is_ok());
    }
}
