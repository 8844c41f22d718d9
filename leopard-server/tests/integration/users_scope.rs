//! The user list's scope clause and the single-user check agree: for random principals and
//! users with random branch memberships (some branches soft-deleted), `list_users` returns a
//! user exactly when `may_touch` allows it — 12,000 (principal, user) cases against PostgreSQL.

use crate::common;

use common::TestApp;
use leopard_core::UserId;
use leopard_rbac::{Action, PermissionSet, Principal, Role};
use leopard_server::api::identity::users::{list_users, may_touch, user_branch_ids, UserFilters};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const USERS: usize = 60;
const PRINCIPALS: usize = 200;

#[tokio::test]
async fn the_user_list_returns_exactly_the_users_the_check_allows() {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let branches = [org.a, org.b, org.c, org.d];
    let mut rng = StdRng::seed_from_u64(0x1e0_9a4d);
    let mut ids = Vec::new();
    for i in 0..USERS {
        let own: Vec<i64> = branches
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.3))
            .collect();
        let role = [None, Some(Role::Consultant), Some(Role::BranchAdmin)][i % 3];
        ids.push(
            app.user("acme", &format!("user_{i:03}"), role, &own, &[])
                .await,
        );
    }
    // Branch B is soft-deleted: memberships in it no longer count, on either side.
    let mut tx = app.context("acme").begin().await.expect("tx");
    sqlx::query("UPDATE branches SET deleted_at = now() WHERE id = $1")
        .bind(org.b)
        .execute(&mut *tx)
        .await
        .expect("soft delete");
    let mut memberships = Vec::new();
    for id in &ids {
        memberships.push(user_branch_ids(&mut tx, *id).await.expect("branches"));
    }

    let mut cases = 0;
    let mut allowed = 0;
    for _ in 0..PRINCIPALS {
        let me = ids[rng.gen_range(0..ids.len())];
        let role = [
            Role::SuperAdmin,
            Role::RegionManager,
            Role::BranchAdmin,
            Role::Consultant,
        ][rng.gen_range(0..4)];
        let my_branches: Vec<i64> = branches
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.4))
            .collect();
        let (regions, region_branches) = if rng.gen_bool(0.5) {
            (vec![org.north], vec![org.a])
        } else {
            (vec![org.south], vec![org.c])
        };
        let principal = if rng.gen_bool(0.1) {
            // A custom group with view_user only.
            let mut set = PermissionSet::new();
            set.insert(leopard_rbac::Permission::new(
                leopard_rbac::ResourceKind::User,
                Action::View,
            ));
            Principal::new(
                UserId(me),
                [("auditors", set)],
                PermissionSet::new(),
                my_branches,
                [],
                [],
            )
        } else {
            Principal::with_role(UserId(me), role, my_branches, regions, region_branches)
        };
        let all = leopard_http::Pagination::new(1, 1000, String::new(), Vec::new());
        let (rows, _) = list_users(&mut tx, &principal, &UserFilters::default(), None, &all)
            .await
            .expect("list");
        let listed: Vec<i64> = rows
            .iter()
            .map(|r| sqlx::Row::get::<i64, _>(r, "id"))
            .collect();
        for (id, branches) in ids.iter().zip(&memberships) {
            let decided = may_touch(&principal, Action::View, *id, branches);
            assert_eq!(
                listed.contains(id),
                decided,
                "user {id} (branches {branches:?}) for {principal:?}"
            );
            cases += 1;
            allowed += usize::from(decided);
        }
    }
    assert!(cases >= 10_000);
    assert!(
        allowed > 0 && allowed < cases,
        "both outcomes occur ({allowed} of {cases})"
    );
}
