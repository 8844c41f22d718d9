//! Seeding: the demo organisation and its CRM data (`leopard demo`), bulk rows for load tests
//! (`leopard seed users|crm`) and name lookups used by the CLI.

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

/// The demo's platform administrator (base host, password [`DEMO_PASSWORD`]).
pub const DEMO_PLATFORM_ADMIN: &str = "platform";

/// Creates the demo's platform administrator when no platform administrator exists yet.
/// Returns whether it was created.
pub async fn seed_demo_platform_admin(conn: &mut PgConnection) -> Result<bool, ApiError> {
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM public.leopard_platform_admins")
        .fetch_one(&mut *conn)
        .await?;
    if existing > 0 {
        return Ok(false);
    }
    crate::api::platform::create_admin(conn, DEMO_PLATFORM_ADMIN, "", DEMO_PASSWORD).await?;
    Ok(true)
}

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

/// Seeds the demo CRM data (`demo_crm.sql`) of a tenant whose demo organisation was just
/// created by [`seed_demo_org`]: 14 clients across both branches and all stages, notes, profile
/// records (language exams, results, qualifications, employment, passports), tasks for the
/// consultant and both branch pools, reminders, calendar events, and the timeline and
/// notification rows those would have produced; then (`demo_study.sql`) agents, visa types and
/// applications in every status, institutes with campuses, intakes, contacts and requirements,
/// the course taxonomy and courses, application types with stages, and college applications
/// spread across stages, institutes and both branches. Dates are relative to now.
pub async fn seed_demo_crm(conn: &mut PgConnection) -> Result<(), ApiError> {
    sqlx::raw_sql(include_str!("demo_crm.sql"))
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(include_str!("demo_study.sql"))
        .execute(&mut *conn)
        .await?;
    Ok(())
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

/// What [`seed_users`] creates.
#[derive(Debug, Clone)]
pub struct SeedUsers {
    /// How many users (numbered `1..=count`).
    pub count: i32,
    /// Username prefix: users are `<prefix>0001`, `<prefix>0002`, … (at least four digits).
    pub prefix: String,
    /// The group (role) name every user joins.
    pub group: String,
    /// The branch every user joins, if any.
    pub branch_id: Option<i64>,
    /// The shared password in clear (checked against the policy, hashed once).
    pub password: String,
}

/// What [`seed_users`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOutcome {
    /// Users inserted now.
    pub created: u64,
    /// Users of the series that already existed and were left alone.
    pub skipped: u64,
}

/// Inserts `spec.count` users in bulk: one hash of the shared password, one
/// `INSERT … SELECT … FROM generate_series` (usernames already taken are skipped), then the
/// group and optional branch memberships of the new rows. Refuses, before inserting anything,
/// when the tenant's `max_users` active users would be exceeded.
pub async fn seed_users(
    conn: &mut PgConnection,
    spec: &SeedUsers,
    max_users: i32,
) -> Result<SeedOutcome, ApiError> {
    if spec.count < 1 {
        return Err(ApiError::BadRequest("--count must be at least 1".into()));
    }
    let sample = format!("{}{:04}", spec.prefix, spec.count);
    identity::validate_username(&sample)
        .map_err(|e| ApiError::BadRequest(format!("--prefix: {e}")))?;
    if let Err(messages) = leopard_http::password::validate_policy(
        &spec.password,
        &sample,
        &format!("{sample}@example.com"),
    ) {
        return Err(ApiError::BadRequest(format!(
            "--password: {}",
            messages.join(" ")
        )));
    }
    let groups = identity::group_ids(conn, std::slice::from_ref(&spec.group)).await?;
    identity::ensure_exist(conn, "branches", "branch", spec.branch_id.as_slice()).await?;
    // Same lock as single creations, so a concurrent create cannot take the last seats.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':users'))")
        .execute(&mut *conn)
        .await?;
    let (active, existing): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users WHERE is_active),
                (SELECT count(*) FROM users u
                   JOIN generate_series(1, $2) AS n
                     ON lower(u.username) = lower($1 || lpad(n::text, greatest(4, length(n::text)), '0')))",
    )
    .bind(&spec.prefix)
    .bind(spec.count)
    .fetch_one(&mut *conn)
    .await?;
    let wanted = i64::from(spec.count) - existing;
    if active + wanted > i64::from(max_users) {
        return Err(ApiError::Forbidden(format!(
            "Seeding {wanted} user(s) would exceed this tenant's limit of {max_users} active users \
             ({active} active now). Raise max_users first, e.g. \
             `UPDATE public.leopard_tenants SET max_users = {} WHERE slug = '<slug>'` \
             or PATCH /api/platform/tenants/<slug>/ with {{\"max_users\": {}}}.",
            active + wanted,
            active + wanted
        )));
    }
    let hash = identity::hash_password(spec.password.clone()).await?;
    let created: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO users (password, username, first_name, last_name, email, is_active)
         SELECT $1, $2 || lpad(n::text, greatest(4, length(n::text)), '0'), 'Seed', 'User ' || lpad(n::text, greatest(4, length(n::text)), '0'),
                lower($2 || lpad(n::text, greatest(4, length(n::text)), '0')) || '@example.com', true
           FROM generate_series(1, $3) AS n
         ON CONFLICT ((lower(username))) DO NOTHING
         RETURNING id",
    )
    .bind(&hash)
    .bind(&spec.prefix)
    .bind(spec.count)
    .fetch_all(&mut *conn)
    .await
    .map_err(identity::user_conflict)?;
    sqlx::query(
        "INSERT INTO user_groups (user_id, group_id)
         SELECT u, g FROM unnest($1::bigint[]) AS u, unnest($2::bigint[]) AS g
         ON CONFLICT DO NOTHING",
    )
    .bind(&created)
    .bind(&groups)
    .execute(&mut *conn)
    .await?;
    if let Some(branch) = spec.branch_id {
        sqlx::query(
            "INSERT INTO user_branches (user_id, branch_id)
             SELECT u, $2 FROM unnest($1::bigint[]) AS u ON CONFLICT DO NOTHING",
        )
        .bind(&created)
        .bind(branch)
        .execute(&mut *conn)
        .await?;
    }
    let created = created.len() as u64;
    Ok(SeedOutcome {
        created,
        skipped: u64::try_from(spec.count)
            .unwrap_or(0)
            .saturating_sub(created),
    })
}

/// Seeds `count` synthetic clients (`Bulk Client 000001`, …) for load tests: spread evenly over
/// the live branches, the four stages, a handful of countries, and assigned round-robin to the
/// users of their branch (unassigned in a branch without users). One statement; no events are
/// recorded (like the original's seeding). Returns how many rows were inserted.
pub async fn seed_bulk_clients(conn: &mut PgConnection, count: i32) -> Result<u64, ApiError> {
    if count > 0 && live_count(conn, "branches").await? == 0 {
        return Err(ApiError::BadRequest(
            "the tenant has no branch to put the clients in: create one first \
             (POST /api/v1/branches/ or Administration → Branches), then seed again"
                .into(),
        ));
    }
    let inserted = sqlx::query(
        "WITH b AS (
             SELECT array_agg(id ORDER BY id) AS ids FROM branches WHERE deleted_at IS NULL
         ),
         members AS (
             SELECT branch_id, array_agg(user_id ORDER BY user_id) AS users
               FROM user_branches GROUP BY branch_id
         ),
         start AS (SELECT COALESCE(max(id), 0) AS n FROM clients)
         INSERT INTO clients (first_name, last_name, gender, country, email, phone_number,
                              branch_id, assigned_to_id, stage, active, created_at, updated_at)
         SELECT 'Bulk', 'Client ' || lpad((start.n + g)::text, 6, '0'),
                (ARRAY['MALE', 'FEMALE', 'OTHER'])[1 + g % 3],
                (ARRAY['NP', 'IN', 'AU', 'PH', 'VN', 'CN', 'BR', 'CO'])[1 + g % 8],
                'bulk.client' || (start.n + g) || '@example.com',
                '+61400' || lpad(((start.n + g) % 1000000)::text, 6, '0'),
                branch.id,
                m.users[1 + (g / cardinality(b.ids)) % cardinality(m.users)],
                (ARRAY['LEAD', 'FOLLOW_UP', 'CLIENT', 'CLOSE'])[1 + (g / cardinality(b.ids)) % 4],
                g % 5 <> 0,
                now() - make_interval(mins => g),
                now() - make_interval(mins => g)
           FROM generate_series(1, $1) AS g
          CROSS JOIN b
          CROSS JOIN start
          CROSS JOIN LATERAL (SELECT b.ids[1 + g % cardinality(b.ids)] AS id) AS branch
           LEFT JOIN members m ON m.branch_id = branch.id
          WHERE cardinality(b.ids) > 0",
    )
    .bind(count)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // Fresh statistics, or the planner keeps estimating the table as nearly empty and lists
    // sort every row instead of walking the ordering index (15 ms instead of 0.4 ms per page).
    sqlx::query("ANALYZE clients").execute(&mut *conn).await?;
    Ok(inserted)
}

/// Seeds `count` synthetic tasks for load tests: every third one in the branch pool of a client's
/// branch, the others assigned to that client's assignee (or left unassigned), each linked to a
/// client (the most recent ones first), with priorities, statuses and due dates spread over
/// ±30 days. One statement; no events. Returns how many rows were inserted.
pub async fn seed_bulk_tasks(conn: &mut PgConnection, count: i32) -> Result<u64, ApiError> {
    if count > 0 && live_count(conn, "clients").await? == 0 {
        return Err(ApiError::BadRequest(
            "the tenant has no client to link the tasks to: seed clients too (--clients N)".into(),
        ));
    }
    let inserted = sqlx::query(
        "WITH c AS (
             SELECT id, branch_id, assigned_to_id, first_name, last_name,
                    row_number() OVER (ORDER BY id DESC) AS n
               FROM clients WHERE deleted_at IS NULL
         ),
         total AS (SELECT count(*) AS n FROM c)
         INSERT INTO tasks (title, detail, priority, status, due_date, assigned_to_id, branch_id,
                            assigned_by_id, content_type_id, object_id, created_by_id)
         SELECT 'Follow up ' || c.first_name || ' ' || c.last_name,
                'Call the client about the next step.',
                (ARRAY['LOW', 'MEDIUM', 'HIGH', 'URGENT'])[1 + g % 4],
                (ARRAY['PENDING', 'IN_PROGRESS', 'COMPLETED', 'PENDING', 'CANCELLED'])[1 + g % 5],
                now() + make_interval(hours => (g % 1440) - 720),
                CASE WHEN g % 3 = 0 THEN NULL ELSE c.assigned_to_id END,
                CASE WHEN g % 3 = 0 THEN c.branch_id END,
                c.assigned_to_id, 10, c.id, c.assigned_to_id
           FROM generate_series(1, $1) AS g
          CROSS JOIN total
           JOIN c ON c.n = 1 + (g - 1) % total.n
          WHERE total.n > 0",
    )
    .bind(count)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // Fresh statistics, or the planner keeps estimating the table as nearly empty and lists
    // sort every row instead of walking the ordering index (15 ms instead of 0.4 ms per page).
    sqlx::query("ANALYZE tasks").execute(&mut *conn).await?;
    Ok(inserted)
}

/// How many live (not soft-deleted) rows `table` holds; `table` is trusted code.
async fn live_count(conn: &mut PgConnection, table: &'static str) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE deleted_at IS NULL"
    ))
    .fetch_one(&mut *conn)
    .await?)
}
