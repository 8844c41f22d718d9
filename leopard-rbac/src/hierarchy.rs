//! The user-management hierarchy: which roles, branches, regions and permissions an actor may
//! hand out. An actor grants only roles below its own, only assignments inside its own scope,
//! and never a permission it lacks (spec README §2, defect 12).

use crate::catalogue::PermissionSet;
use crate::principal::Principal;
use crate::role::{Role, Scope};

/// The built-in roles `principal` may grant: those below its highest role, highest first.
/// Custom groups grant no role.
pub fn grantable_roles(principal: &Principal) -> Vec<Role> {
    principal
        .highest_role()
        .map(|r| r.grantable().to_vec())
        .unwrap_or_default()
}

/// Whether `principal` may assign every one of `branch_ids` to a user: tenant scope may assign
/// any branch, region scope the branches of its regions (and its own branches), branch scope its
/// own branches, own scope none.
pub fn may_assign_branches(principal: &Principal, branch_ids: &[i64]) -> bool {
    match principal.scope() {
        Some(Scope::Tenant) => true,
        _ => {
            let covered = principal.covered_branches();
            branch_ids.iter().all(|b| covered.contains(b))
        }
    }
}

/// Whether `principal` may assign every one of `region_ids` to a user: tenant scope may assign
/// any region, region scope its own regions, narrower scopes none.
pub fn may_assign_regions(principal: &Principal, region_ids: &[i64]) -> bool {
    match principal.scope() {
        Some(Scope::Tenant) => true,
        Some(Scope::Regions) => region_ids
            .iter()
            .all(|r| principal.region_ids().contains(r)),
        _ => region_ids.is_empty(),
    }
}

/// Whether `principal` may grant `permissions`: never a permission it lacks itself.
pub fn may_grant(principal: &Principal, permissions: &PermissionSet) -> bool {
    permissions.is_subset(principal.permissions())
}

#[cfg(test)]
mod tests {
    use leopard_core::UserId;

    use super::*;
    use crate::catalogue::{Action, Permission, ResourceKind};

    fn p(role: Role) -> Principal {
        Principal::with_role(UserId(1), role, [1, 2], [10], [3, 4])
    }

    #[test]
    fn each_role_grants_only_the_roles_below_it() {
        assert_eq!(
            grantable_roles(&p(Role::SuperAdmin)),
            vec![Role::RegionManager, Role::BranchAdmin, Role::Consultant]
        );
        assert_eq!(
            grantable_roles(&p(Role::RegionManager)),
            vec![Role::BranchAdmin, Role::Consultant]
        );
        assert_eq!(
            grantable_roles(&p(Role::BranchAdmin)),
            vec![Role::Consultant]
        );
        assert_eq!(grantable_roles(&p(Role::Consultant)), Vec::<Role>::new());
    }

    #[test]
    fn a_user_in_several_roles_grants_what_the_highest_grants() {
        let both = Principal::new(
            UserId(1),
            [
                ("CONSULTANT", Role::Consultant.default_permissions()),
                ("BRANCH_ADMIN", Role::BranchAdmin.default_permissions()),
            ],
            PermissionSet::new(),
            [1],
            [],
            [],
        );
        assert_eq!(grantable_roles(&both), vec![Role::Consultant]);
    }

    #[test]
    fn a_custom_group_grants_no_role() {
        let custom = Principal::new(
            UserId(1),
            [("Auditors", PermissionSet::all())],
            PermissionSet::new(),
            [],
            [],
            [],
        );
        assert!(grantable_roles(&custom).is_empty());
    }

    #[test]
    fn branches_may_be_assigned_only_within_the_actors_scope() {
        assert!(may_assign_branches(&p(Role::SuperAdmin), &[77]));
        assert!(may_assign_branches(&p(Role::RegionManager), &[1, 3, 4]));
        assert!(!may_assign_branches(&p(Role::RegionManager), &[5]));
        assert!(may_assign_branches(&p(Role::BranchAdmin), &[1, 2]));
        assert!(!may_assign_branches(&p(Role::BranchAdmin), &[2, 3]));
        assert!(may_assign_branches(&p(Role::BranchAdmin), &[]));
    }

    #[test]
    fn regions_may_be_assigned_only_within_the_actors_scope() {
        assert!(may_assign_regions(&p(Role::SuperAdmin), &[99]));
        assert!(may_assign_regions(&p(Role::RegionManager), &[10]));
        assert!(!may_assign_regions(&p(Role::RegionManager), &[11]));
        assert!(!may_assign_regions(&p(Role::BranchAdmin), &[10]));
        assert!(may_assign_regions(&p(Role::BranchAdmin), &[]));
    }

    #[test]
    fn an_actor_never_grants_a_permission_it_lacks() {
        let ba = p(Role::BranchAdmin);
        assert!(may_grant(&ba, &Role::Consultant.default_permissions()));
        assert!(!may_grant(&ba, &Role::SuperAdmin.default_permissions()));
        let delete_branch = Permission::new(ResourceKind::Branch, Action::Delete);
        assert!(!may_grant(&ba, &[delete_branch].into_iter().collect()));
        assert!(may_grant(&p(Role::SuperAdmin), &PermissionSet::all()));
    }
}
