//! The SQL filter agrees with `check`: for thousands of random (principal, row) cases, the ids
//! PostgreSQL returns for `SELECT id FROM rows WHERE <filter>` are exactly the rows `check`
//! allows. The RNG is seeded (override with `RBAC_FILTER_SEED`) so a failure reproduces.

use std::collections::BTreeSet;

use leopard::core::UserId;
use leopard::rbac::{
    check, filter, Action, Permission, PermissionSet, Principal, Resource, ResourceKind, Role,
    ScopeColumns, SqlParam,
};
use leopard::tenancy::testing::TestDatabase;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng as _};

/// Number of random rows in the table.
const ROWS: usize = 300;
/// Number of random principals (each checked against every row).
const PRINCIPALS: usize = 300;
/// Branch ids 1..=BRANCHES.
const BRANCHES: i64 = 8;
/// User ids 1..=USERS.
const USERS: i64 = 10;
/// Region ids 1..=REGIONS.
const REGIONS: i64 = 4;

/// Kinds whose rows are scoped by branch and/or owner.
const SCOPED_KINDS: [ResourceKind; 9] = [
    ResourceKind::Region,
    ResourceKind::Client,
    ResourceKind::Note,
    ResourceKind::VisaApplication,
    ResourceKind::Branch,
    ResourceKind::Task,
    ResourceKind::User,
    ResourceKind::Notification,
    ResourceKind::CalendarEvent,
];

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    branch_id: Option<i64>,
    region_id: Option<i64>,
    assigned_to_id: Option<i64>,
    created_by_id: Option<i64>,
}

/// The region holding `branch` (branch 8 is in none).
fn region_of_branch(branch: i64) -> Option<i64> {
    (1..=REGIONS).find(|r| branches_of_region(*r).contains(&branch))
}

/// The branches inside a region: regions 1–3 hold two branches each, region 4 holds branch 7,
/// branch 8 is in no region.
fn branches_of_region(region: i64) -> Vec<i64> {
    match region {
        4 => vec![7],
        r => vec![2 * r - 1, 2 * r],
    }
}

fn maybe(rng: &mut StdRng, p: f64, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    rng.gen_bool(p).then(|| rng.gen_range(range))
}

fn random_row(rng: &mut StdRng, id: i64) -> Row {
    Row {
        id,
        branch_id: maybe(rng, 0.85, 1..=BRANCHES),
        region_id: maybe(rng, 0.85, 1..=REGIONS),
        assigned_to_id: maybe(rng, 0.8, 1..=USERS),
        created_by_id: maybe(rng, 0.8, 1..=USERS),
    }
}

fn random_permissions(rng: &mut StdRng) -> PermissionSet {
    Permission::all().filter(|_| rng.gen_bool(0.5)).collect()
}

fn random_principal(rng: &mut StdRng) -> Principal {
    let mut groups: Vec<(String, PermissionSet)> = Vec::new();
    for role in Role::ALL {
        if rng.gen_bool(0.25) {
            groups.push((role.group_name().to_owned(), role.default_permissions()));
        }
    }
    if rng.gen_bool(0.2) {
        groups.push(("Custom".to_owned(), random_permissions(rng)));
    }
    let direct = if rng.gen_bool(0.15) {
        random_permissions(rng)
    } else {
        PermissionSet::new()
    };
    let branches: Vec<i64> = (1..=BRANCHES).filter(|_| rng.gen_bool(0.25)).collect();
    let regions: Vec<i64> = (1..=REGIONS).filter(|_| rng.gen_bool(0.2)).collect();
    let region_branches: Vec<i64> = regions
        .iter()
        .flat_map(|r| branches_of_region(*r))
        .collect();
    let branch_regions: Vec<i64> = branches
        .iter()
        .filter_map(|b| region_of_branch(*b))
        .collect();
    Principal::new(
        UserId(rng.gen_range(1..=USERS)),
        groups,
        direct,
        branches,
        regions,
        region_branches,
    )
    .with_branch_regions(branch_regions)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sql_filter_selects_exactly_the_rows_check_allows() {
    let seed: u64 = std::env::var("RBAC_FILTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1e0_9a2d);
    let mut rng = StdRng::seed_from_u64(seed);
    let db = TestDatabase::new().await.expect("test database");
    let pool = db.pool();
    sqlx::query(
        "CREATE TABLE rows (id bigint PRIMARY KEY, branch_id bigint NULL, \
         region_id bigint NULL, assigned_to_id bigint NULL, created_by_id bigint NULL)",
    )
    .execute(pool)
    .await
    .expect("create table");

    let rows: Vec<Row> = (1..=ROWS as i64)
        .map(|id| random_row(&mut rng, id))
        .collect();
    sqlx::query(
        "INSERT INTO rows (id, branch_id, region_id, assigned_to_id, created_by_id) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
                              $5::bigint[])",
    )
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.branch_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.region_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.assigned_to_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.created_by_id).collect::<Vec<_>>())
    .execute(pool)
    .await
    .expect("insert rows");

    let one_owner: &[&str] = &["assigned_to_id"];
    let two_owners: &[&str] = &["assigned_to_id", "created_by_id"];
    let mut cases = 0usize;
    let mut allowed_total = 0usize;
    let mut scoped = 0usize;
    for case in 0..PRINCIPALS {
        let principal = random_principal(&mut rng);
        // Mostly row-scoped kinds: master data always filters to TRUE or FALSE.
        let kind = if rng.gen_bool(0.7) {
            SCOPED_KINDS[rng.gen_range(0..SCOPED_KINDS.len())]
        } else {
            ResourceKind::ALL[rng.gen_range(0..ResourceKind::ALL.len())]
        };
        let action = Action::ALL[rng.gen_range(0..Action::ALL.len())];
        let owners = if rng.gen_bool(0.5) {
            one_owner
        } else {
            two_owners
        };
        // Half the time the predicate follows a parameter of the query's own.
        let leading = rng.gen_bool(0.5);
        let columns = ScopeColumns {
            branch: "branch_id",
            owners,
            region: "region_id",
        };
        let predicate = filter(
            &principal,
            action,
            kind,
            &columns,
            if leading { 2 } else { 1 },
        );
        let sql = if leading {
            format!("SELECT id FROM rows WHERE id > $1 AND {}", predicate.sql)
        } else {
            format!("SELECT id FROM rows WHERE {}", predicate.sql)
        };
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        if leading {
            query = query.bind(0_i64);
        }
        for param in &predicate.params {
            query = match param {
                SqlParam::Int(v) => query.bind(*v),
                SqlParam::IntArray(v) => query.bind(v.clone()),
            };
        }
        let from_sql: BTreeSet<i64> = query
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("seed {seed} case {case}: {sql} failed: {e}"))
            .into_iter()
            .collect();

        let from_check: BTreeSet<i64> = rows
            .iter()
            .filter(|row| {
                let owner_ids = if owners.len() == 2 {
                    vec![row.assigned_to_id, row.created_by_id]
                } else {
                    vec![row.assigned_to_id]
                };
                let mut resource =
                    Resource::new(kind, row.branch_id).owned_by(owner_ids.into_iter().flatten());
                resource.region_id = row.region_id;
                check(&principal, action, &resource).allowed()
            })
            .map(|row| row.id)
            .collect();

        assert_eq!(
            from_sql, from_check,
            "seed {seed} case {case}: {action} {kind} for {principal:?}\nfilter: {sql} {:?}",
            predicate.params
        );
        cases += rows.len();
        scoped += usize::from(!predicate.params.is_empty());
        allowed_total += from_check.len();
    }
    assert!(cases >= 10_000, "only {cases} cases");
    // The random principals must exercise both outcomes, or the test proves little.
    assert!(scoped >= PRINCIPALS / 5, "only {scoped} scoped predicates");
    assert!(
        allowed_total > 0 && allowed_total < cases,
        "{allowed_total} of {cases} allowed"
    );
}
