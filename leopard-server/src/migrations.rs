//! The server's embedded migration sets.
//!
//! `0003_identity_seed.sql` is generated from the `leopard-rbac` catalogue and role defaults and
//! committed; a unit test fails when it drifts (`LEOPARD_BLESS=1 cargo test -p leopard-server
//! identity_seed` rewrites it). Once released, a catalogue change needs a new migration.

use std::fmt::Write as _;
use std::sync::Arc;

use leopard_rbac::{Permission, ResourceKind, Role};
use leopard_tenancy::{Migration, MigrationSet};

/// Tenant migrations of the CRM, applied to every tenant schema in order.
pub const TENANT: &[Migration] = &[
    Migration::new(
        1,
        "content_types",
        include_str!("../migrations/tenant/0001_content_types.sql"),
    ),
    Migration::new(
        2,
        "identity",
        include_str!("../migrations/tenant/0002_identity.sql"),
    ),
    Migration::new(
        3,
        "identity_seed",
        include_str!("../migrations/tenant/0003_identity_seed.sql"),
    ),
    Migration::new(
        4,
        "audit_log",
        include_str!("../migrations/tenant/0004_audit_log.sql"),
    ),
    Migration::new(
        5,
        "clients",
        include_str!("../migrations/tenant/0005_clients.sql"),
    ),
    Migration::new(
        6,
        "crm_role_grants",
        include_str!("../migrations/tenant/0006_crm_role_grants.sql"),
    ),
    Migration::new(
        7,
        "profile",
        include_str!("../migrations/tenant/0007_profile.sql"),
    ),
    Migration::new(
        8,
        "notes_reminders_calendar",
        include_str!("../migrations/tenant/0008_notes_reminders_calendar.sql"),
    ),
    Migration::new(
        9,
        "tasks",
        include_str!("../migrations/tenant/0009_tasks.sql"),
    ),
    Migration::new(
        10,
        "scheduler",
        include_str!("../migrations/tenant/0010_scheduler.sql"),
    ),
    Migration::new(
        11,
        "visa_agents",
        include_str!("../migrations/tenant/0011_visa_agents.sql"),
    ),
    Migration::new(
        12,
        "institutes",
        include_str!("../migrations/tenant/0012_institutes.sql"),
    ),
    Migration::new(
        13,
        "college_applications",
        include_str!("../migrations/tenant/0013_college_applications.sql"),
    ),
    Migration::new(
        14,
        "web_sessions",
        include_str!("../migrations/tenant/0014_web_sessions.sql"),
    ),
    Migration::new(
        15,
        "principal_notices",
        include_str!("../migrations/tenant/0015_principal_notices.sql"),
    ),
    Migration::new(
        16,
        "option_notices",
        include_str!("../migrations/tenant/0016_option_notices.sql"),
    ),
    Migration::new(
        17,
        "count_notices",
        include_str!("../migrations/tenant/0017_count_notices.sql"),
    ),
];

/// Shared migrations of the server (the public schema), after the registry's own.
pub const SHARED: &[Migration] = &[
    Migration::new(
        1,
        "platform_admins",
        include_str!("../migrations/shared/0001_platform_admins.sql"),
    ),
    Migration::new(
        2,
        "platform_refresh_tokens",
        include_str!("../migrations/shared/0002_platform_refresh_tokens.sql"),
    ),
    Migration::new(3, "events", leopard_events::MIGRATION),
    Migration::new(
        4,
        "platform_web_sessions",
        include_str!("../migrations/shared/0004_platform_web_sessions.sql"),
    ),
];

/// The server's migration set.
pub fn set() -> Arc<MigrationSet> {
    // The constant lists are checked by a unit test, so this never panics.
    Arc::new(MigrationSet::new(SHARED.to_vec(), TENANT.to_vec()).expect("versions are increasing"))
}

/// Content types of `0001_content_types.sql` (ids 1–21).
const FIRST_CONTENT_TYPES: &[&str] = &[
    "admin.logentry",
    "auth.permission",
    "auth.group",
    "contenttypes.contenttype",
    "sessions.session",
    "immigration.user",
    "immigration.region",
    "immigration.branch",
    "immigration.agent",
    "immigration.client",
    "immigration.note",
    "immigration.task",
    "immigration.reminder",
    "immigration.calendarevent",
    "immigration.visacategory",
    "immigration.visatype",
    "immigration.visaapplication",
    "immigration.institute",
    "immigration.course",
    "immigration.collegeapplication",
    "immigration.notification",
];

/// The database id of a catalogue permission: its catalogue id plus one (stable).
pub fn permission_db_id(permission: Permission) -> i32 {
    i32::from(permission.id()) + 1
}

/// Renders the identity seed: the content types the catalogue needs beyond `0001`, every
/// permission, and the four built-in groups with their default permissions.
pub fn identity_seed_sql() -> String {
    let mut sql = String::from(
        "-- GENERATED from the leopard-rbac catalogue by `identity_seed_sql()` \
         (crates/leopard-server/src/migrations.rs); do not edit.\n\
         -- Content types the catalogue needs beyond 0001, every permission (id = catalogue id + 1),\n\
         -- and the four built-in roles as groups with their default permissions.\n\n",
    );
    let mut types: Vec<String> = FIRST_CONTENT_TYPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut new_types = Vec::new();
    for kind in ResourceKind::ALL {
        let ct = format!("immigration.{}", kind.model());
        if !types.contains(&ct) {
            types.push(ct.clone());
            new_types.push((types.len(), ct));
        }
    }
    sql.push_str("INSERT INTO content_types (id, app_label, model) VALUES\n");
    let rows: Vec<String> = new_types
        .iter()
        .map(|(id, ct)| {
            let (app, model) = ct.split_once('.').unwrap_or(("immigration", ct));
            format!("    ({id}, '{app}', '{model}')")
        })
        .collect();
    sql.push_str(&rows.join(",\n"));
    sql.push_str(";\n\nINSERT INTO permissions (id, codename, name, content_type_id) VALUES\n");
    let rows: Vec<String> = Permission::all()
        .map(|p| {
            let ct = p.content_type();
            let ct_id = types.iter().position(|t| *t == ct).map_or(0, |i| i + 1);
            format!(
                "    ({}, '{}', '{}', {ct_id})",
                permission_db_id(p),
                p.codename(),
                p.name().replace('\'', "''")
            )
        })
        .collect();
    sql.push_str(&rows.join(",\n"));
    sql.push_str(";\n");
    for role in Role::ALL {
        let _ = write!(
            sql,
            "\nINSERT INTO groups (name) VALUES ('{}');\n\
             INSERT INTO group_permissions (group_id, permission_id)\n\
             SELECT g.id, p FROM groups g, unnest(ARRAY[{}]::integer[]) AS p WHERE g.name = '{}';\n",
            role.group_name(),
            role.original_permissions()
                .iter()
                .map(|p| permission_db_id(p).to_string())
                .collect::<Vec<_>>()
                .join(","),
            role.group_name(),
        );
    }
    sql
}

/// Renders `0006_crm_role_grants.sql`: the permissions Leopard grants beyond the original's
/// role sets ([`Role::crm_additions`]), added to the built-in groups of every tenant.
pub fn crm_grants_sql() -> String {
    let mut sql = String::from(
        "-- GENERATED from leopard-rbac `Role::crm_additions` by `crm_grants_sql()`\n\
         -- (crates/leopard-server/src/migrations.rs); do not edit. The permissions Region Managers\n\
         -- and Consultants need for the CRM resources the original left open to everyone.\n",
    );
    for role in Role::ALL {
        let ids: Vec<String> = role
            .crm_additions()
            .iter()
            .map(|p| permission_db_id(p).to_string())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let _ = write!(
            sql,
            "\nINSERT INTO group_permissions (group_id, permission_id)\n\
             SELECT g.id, p FROM groups g, unnest(ARRAY[{}]::integer[]) AS p WHERE g.name = '{}'\n\
             ON CONFLICT DO NOTHING;\n",
            ids.join(","),
            role.group_name(),
        );
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_sets_are_well_formed() {
        assert!(MigrationSet::new(SHARED.to_vec(), TENANT.to_vec()).is_ok());
        // Numbered 1, 2, … without gaps, each file named after its number.
        for (i, m) in TENANT.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "tenant migration {}", m.name);
        }
        assert_eq!(set().latest_tenant_version(), TENANT.len() as i64);
        let shared: Vec<i64> = SHARED.iter().map(|m| m.version).collect();
        assert_eq!(shared, (1..=SHARED.len() as i64).collect::<Vec<_>>());
    }

    /// Compares committed generated migration `file` with `expected` (rewriting it first
    /// under `LEOPARD_BLESS`).
    fn assert_generated(file: &str, expected: &str) {
        let path = format!("{}/migrations/tenant/{file}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("LEOPARD_BLESS").is_some() {
            std::fs::write(&path, expected).expect("write the migration");
        }
        let committed = std::fs::read_to_string(&path).expect("read the migration");
        assert!(
            committed == expected,
            "{file} is stale: run LEOPARD_BLESS=1 cargo test -p leopard-server identity_seed"
        );
    }

    #[test]
    fn the_committed_identity_seed_matches_the_catalogue() {
        assert_generated("0003_identity_seed.sql", &identity_seed_sql());
    }

    #[test]
    fn the_committed_identity_seed_crm_grants_match_the_role_additions() {
        assert_generated("0006_crm_role_grants.sql", &crm_grants_sql());
    }
}
