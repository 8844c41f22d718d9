//! Tenant backup and restore at the library level, over a schema built to be awkward: identity
//! (`GENERATED ALWAYS`) and serial keys with gaps, a stored generated column, a table without a
//! primary key holding duplicate rows, a quoted table name, rows the migration seeds, and
//! values `COPY` text must escape (tabs, newlines, backslashes, NUL-bearing bytea, NULLs,
//! arrays, JSON, special floats, intervals, time zones).

mod common;

use common::{slug_of, Env};
use leopard::tenancy::backup::Archive;
use leopard::tenancy::Migration;
use sqlx::PgPool;

const AWKWARD: Migration = Migration::new(
    1,
    "awkward",
    r#"CREATE TABLE things (
           id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           label  text NOT NULL,
           data   bytea,
           doc    jsonb,
           tags   text[],
           at     timestamptz,
           span   interval,
           ratio  double precision,
           amount numeric(12, 4),
           twice  integer GENERATED ALWAYS AS (length(label) * 2) STORED
       );
       CREATE TABLE children (
           id       bigserial PRIMARY KEY,
           thing_id bigint NOT NULL REFERENCES things (id) ON DELETE CASCADE
       );
       CREATE TABLE pairs (a integer, b text);
       CREATE TABLE "Odd ""Name""" (id serial PRIMARY KEY, "select" text);
       INSERT INTO pairs VALUES (0, 'seeded by the migration');"#,
);

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.expect(sql);
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

#[tokio::test]
async fn awkward_types_and_tables_survive_a_round_trip_with_equal_hashes_and_working_sequences() {
    let env = Env::with_migrations(vec![AWKWARD], 6).await;
    env.tenant("src").await;
    let pool = env.db.pool();
    exec(
        pool,
        r#"SET search_path TO tenant_src;
           INSERT INTO things (label, data, doc, tags, at, span, ratio, amount) VALUES
             (E'tab\there, newline\nthere, backslash \\ end', '\x00ff00'::bytea,
              '{"a": [1, 2, {"b": null}], "é": "ü"}', ARRAY['x', NULL, 'y,z', '"q"'],
              '2026-03-29 01:30:00+01', '1 year 2 mons 3 days 04:05:06.789', 0.1, 12345678.1234),
             ('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('special floats', '', 'null', '{}', 'infinity', '-1 day', 'NaN', -0.0001),
             ('negative zero', NULL, '[]', NULL, '-infinity', '0', '-0', 0),
             ('to be deleted', NULL, NULL, NULL, NULL, NULL, 'Infinity', NULL);
           DELETE FROM things WHERE label = 'to be deleted';
           INSERT INTO children (thing_id) SELECT id FROM things;
           INSERT INTO children (thing_id) SELECT id FROM things WHERE label = 'nulls';
           DELETE FROM children WHERE id = 2;
           INSERT INTO pairs VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, E'\\N');
           INSERT INTO "Odd ""Name""" ("select") VALUES ('from'), (NULL);
           RESET search_path;"#,
    )
    .await;

    let archive = env
        .provisioner
        .backup(&slug_of("src"), None)
        .await
        .expect("backup");
    let archive = Archive::from_bytes(&archive.to_bytes().expect("bytes")).expect("read back");
    let names: Vec<&str> = archive
        .manifest()
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["Odd \"Name\"", "children", "pairs", "things"]);
    let things = &archive.manifest().tables[3];
    assert!(
        !things.columns.iter().any(|c| c == "twice"),
        "generated columns are recomputed, not archived"
    );
    assert_eq!(archive.manifest().tables[2].order_by, Vec::<String>::new());

    let restored = env
        .provisioner
        .restore(&archive, &slug_of("dst"), None)
        .await
        .expect("restore");
    assert!(
        restored.tables.iter().all(|c| c.matches()),
        "{:?}",
        restored.tables
    );
    let verification = env
        .provisioner
        .verify(&slug_of("dst"), &archive, None)
        .await
        .expect("verify");
    assert!(verification.is_match(), "{:?}", verification.differences());

    // Seeded rows were replaced, not doubled; duplicates and the generated column are kept.
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tenant_dst.pairs").await,
        5
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM tenant_dst.pairs WHERE a = 1 AND b = 'dup'"
        )
        .await,
        2
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT twice::bigint FROM tenant_dst.things WHERE label = 'nulls'"
        )
        .await,
        10
    );
    let same: bool = sqlx::query_scalar(
        "SELECT (SELECT array_agg(t ORDER BY id)::text FROM tenant_src.things t)
              = (SELECT array_agg(t ORDER BY id)::text FROM tenant_dst.things t)",
    )
    .fetch_one(pool)
    .await
    .expect("compare");
    assert!(same, "every value of things is equal");

    // Every sequence continues after the highest restored key, also across the gaps.
    for (table, insert) in [
        ("things", "INSERT INTO tenant_dst.things (label) VALUES ('new') RETURNING id"),
        ("children", "INSERT INTO tenant_dst.children (thing_id) VALUES (1) RETURNING id"),
        (
            "\"Odd \"\"Name\"\"\"",
            "INSERT INTO tenant_dst.\"Odd \"\"Name\"\"\" (\"select\") VALUES ('x') RETURNING id::bigint",
        ),
    ] {
        let max_src = scalar(pool, &format!("SELECT max(id)::bigint FROM tenant_src.{table}")).await;
        assert_eq!(scalar(pool, insert).await, max_src + 1, "{table}");
    }

    // The source is unchanged and still matches; the copy no longer does.
    let source = env
        .provisioner
        .verify(&slug_of("src"), &archive, None)
        .await
        .expect("verify source");
    assert!(source.is_match(), "{:?}", source.differences());
    let changed = env
        .provisioner
        .verify(&slug_of("dst"), &archive, None)
        .await
        .expect("verify copy");
    let differences = changed.differences();
    assert_eq!(differences.len(), 3, "{differences:?}");
    assert!(differences.iter().any(|d| d.starts_with("table things:")));
}
