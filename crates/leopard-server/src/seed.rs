//! Seeding: the demo organisation (`leopard demo`) and name lookups used by the CLI.

use leopard_http::ApiError;
use leopard_rbac::Role;
use sqlx::PgConnection;

use crate::identity::{self, NewUser};

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "Leopard-Demo-2026";

/// The demo users: (username, role, first name, last name, assignment).
pub const DEMO_USERS: &[(&str, Role, &str, &str)] = &[
    ("admin", Role::SuperAdmin, "Ada", "Admin"),
    ("region.manager", Role::RegionManager, "Rhea", "Regan"),
    ("branch.admin", Role::BranchAdmin, "Ben", "Branch"),
    ("consultant", Role::Consultant, "Cleo", "Consult"),
];

/// Seeds, when the tenant has no users yet, region "Central" with branches "Head Office" and
/// "City Branch", and one user per role (`DEMO_USERS`, password [`DEMO_PASSWORD`]): the region
/// manager runs Central, the branch admin and the consultant work at Head Office. Returns
/// whether anything was created.
pub async fn seed_demo_org(conn: &mut PgConnection, max_users: i32) -> Result<bool, ApiError> {
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *conn)
        .await?;
    if users > 0 {
        return Ok(false);
    }
    let region: i64 = sqlx::query_scalar(
        "INSERT INTO regions (name, description) VALUES ('Central', 'Demo region') RETURNING id",
    )
    .fetch_one(&mut *conn)
    .await?;
    let head: i64 = sqlx::query_scalar(
        "INSERT INTO branches (name, region_id, phone, street, suburb, state, postcode, country)
         VALUES ('Head Office', $1, '+61 2 5550 0100', '1 Main St', 'Sydney', 'NSW', '2000', 'AU')
         RETURNING id",
    )
    .bind(region)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO branches (name, region_id, phone, street, suburb, state, postcode, country)
         VALUES ('City Branch', $1, '+61 2 5550 0200', '20 George St', 'Sydney', 'NSW', '2000', 'AU')",
    )
    .bind(region)
    .execute(&mut *conn)
    .await?;
    for (username, role, first, last) in DEMO_USERS {
        let (branches, regions) = match role {
            Role::SuperAdmin => (vec![], vec![]),
            Role::RegionManager => (vec![], vec![region]),
            Role::BranchAdmin | Role::Consultant => (vec![head], vec![]),
        };
        identity::create_user(
            conn,
            &NewUser {
                username: (*username).into(),
                email: format!("{username}@example.com"),
                password: DEMO_PASSWORD.into(),
                first_name: (*first).into(),
                last_name: (*last).into(),
                groups: vec![role.group_name().into()],
                branch_ids: branches,
                region_ids: regions,
                is_active: true,
            },
            max_users,
        )
        .await?;
    }
    Ok(true)
}

/// The ids of the rows of `table` (`branches` or `regions`) named `names` (case-insensitive);
/// an unknown name is an error naming it.
pub async fn ids_by_name(
    conn: &mut PgConnection,
    table: &'static str,
    names: &[String],
) -> Result<Vec<i64>, ApiError> {
    let live = if table == "branches" {
        " AND deleted_at IS NULL"
    } else {
        ""
    };
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        let id: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM {table} WHERE lower(name) = lower($1){live}"
        ))
        .bind(name.trim())
        .fetch_optional(&mut *conn)
        .await?;
        ids.push(id.ok_or_else(|| ApiError::BadRequest(format!("no {table} row named {name:?}")))?);
    }
    Ok(ids)
}
