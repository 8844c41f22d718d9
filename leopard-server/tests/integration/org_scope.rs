//! The scope of every list that names organisation units, per role, over HTTP against
//! PostgreSQL (spec §4.3): regions, branches, branch options and group options. The
//! organisation: regions North (branches A, B) and South (branch C), branch D in no region.
//! A region or branch outside the caller's scope is a 404, like a missing one.

use crate::common;

use common::{Org, TestApp};
use http::StatusCode;
use leopard_rbac::Role;
use serde_json::Value;

const SLUG: &str = "acme";

fn names(rows: &Value) -> Vec<String> {
    rows.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

struct World {
    app: TestApp,
    org: Org,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::new(&[SLUG]).await;
        let org = app.seed_org(SLUG).await;
        Self { app, org }
    }

    /// A user with `role`, `branches` and `regions`, logged in.
    async fn actor(&self, name: &str, role: Role, branches: &[i64], regions: &[i64]) -> String {
        self.app
            .user(SLUG, name, Some(role), branches, regions)
            .await;
        self.app.token(SLUG, name).await
    }

    async fn list(&self, path: &str, token: &str) -> Vec<String> {
        let (status, _, body) = self.app.get(SLUG, path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let rows = if body.is_array() {
            &body
        } else {
            &body["results"]
        };
        names(rows)
    }

    async fn status(&self, path: &str, token: &str) -> StatusCode {
        self.app.get(SLUG, path, token).await.0
    }
}

#[tokio::test]
async fn a_region_manager_lists_and_reads_exactly_its_regions() {
    let w = World::new().await;
    let token = w
        .actor("rm", Role::RegionManager, &[], &[w.org.north])
        .await;
    assert_eq!(w.list("/api/v1/regions/", &token).await, ["North"]);
    let north = format!("/api/v1/regions/{}/", w.org.north);
    let south = format!("/api/v1/regions/{}/", w.org.south);
    assert_eq!(w.status(&north, &token).await, StatusCode::OK);
    assert_eq!(w.status(&south, &token).await, StatusCode::NOT_FOUND);
    // A manager of both regions sees both.
    let both = w
        .actor("rm2", Role::RegionManager, &[], &[w.org.north, w.org.south])
        .await;
    assert_eq!(w.list("/api/v1/regions/", &both).await, ["North", "South"]);
}

#[tokio::test]
async fn a_branch_admin_lists_the_regions_of_its_branches_and_none_for_a_branch_outside_any_region()
{
    let w = World::new().await;
    let south_admin = w.actor("bc", Role::BranchAdmin, &[w.org.c], &[]).await;
    assert_eq!(w.list("/api/v1/regions/", &south_admin).await, ["South"]);
    let north = format!("/api/v1/regions/{}/", w.org.north);
    assert_eq!(w.status(&north, &south_admin).await, StatusCode::NOT_FOUND);
    let two = w
        .actor("bac", Role::BranchAdmin, &[w.org.a, w.org.c], &[])
        .await;
    assert_eq!(w.list("/api/v1/regions/", &two).await, ["North", "South"]);
    let regionless = w.actor("bd", Role::BranchAdmin, &[w.org.d], &[]).await;
    assert!(w.list("/api/v1/regions/", &regionless).await.is_empty());
    assert_eq!(w.status(&north, &regionless).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_super_admin_lists_every_region_and_a_consultant_none_as_it_lacks_view_region() {
    let w = World::new().await;
    let root = w.actor("root", Role::SuperAdmin, &[], &[]).await;
    assert_eq!(w.list("/api/v1/regions/", &root).await, ["North", "South"]);
    let south = format!("/api/v1/regions/{}/", w.org.south);
    assert_eq!(w.status(&south, &root).await, StatusCode::OK);
    // The original gives consultants no region permission (spec §4.2).
    let consultant = w.actor("ca", Role::Consultant, &[w.org.a], &[]).await;
    assert_eq!(
        w.status("/api/v1/regions/", &consultant).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.status(&south, &consultant).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn branch_lists_and_options_hold_exactly_the_branches_in_each_roles_scope_and_consultants_none(
) {
    let w = World::new().await;
    let cases = [
        (
            w.actor("root", Role::SuperAdmin, &[], &[]).await,
            vec!["Branch A", "Branch B", "Branch C", "Branch D"],
        ),
        (
            w.actor("rm", Role::RegionManager, &[], &[w.org.north])
                .await,
            vec!["Branch A", "Branch B"],
        ),
        (
            w.actor("ba", Role::BranchAdmin, &[w.org.a], &[]).await,
            vec!["Branch A"],
        ),
    ];
    let all = [w.org.a, w.org.b, w.org.c, w.org.d];
    let all_names = ["Branch A", "Branch B", "Branch C", "Branch D"];
    for (token, expected) in &cases {
        assert_eq!(&w.list("/api/v1/branches/", token).await, expected);
        assert_eq!(&w.list("/api/v1/branches/options/", token).await, expected);
        for (id, name) in all.iter().zip(all_names) {
            let status = w.status(&format!("/api/v1/branches/{id}/"), token).await;
            let want = if expected.contains(&name) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, want, "{name} for {expected:?}");
        }
    }
    // The original gives consultants no branch permission (spec §4.2).
    let consultant = w.actor("cc", Role::Consultant, &[w.org.c], &[]).await;
    for path in ["/api/v1/branches/", "/api/v1/branches/options/"] {
        assert_eq!(w.status(path, &consultant).await, StatusCode::FORBIDDEN);
    }
    let own = format!("/api/v1/branches/{}/", w.org.c);
    assert_eq!(w.status(&own, &consultant).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn group_options_offer_each_role_only_the_roles_below_it() {
    let w = World::new().await;
    let cases = [
        (
            w.actor("root", Role::SuperAdmin, &[], &[]).await,
            vec!["REGION_MANAGER", "BRANCH_ADMIN", "CONSULTANT"],
        ),
        (
            w.actor("rm", Role::RegionManager, &[], &[w.org.north])
                .await,
            vec!["BRANCH_ADMIN", "CONSULTANT"],
        ),
        (
            w.actor("ba", Role::BranchAdmin, &[w.org.a], &[]).await,
            vec!["CONSULTANT"],
        ),
        (
            w.actor("ca", Role::Consultant, &[w.org.a], &[]).await,
            vec![],
        ),
    ];
    for (token, expected) in &cases {
        let mut got = w.list("/api/v1/groups/options/", token).await;
        let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
