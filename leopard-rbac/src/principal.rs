//! [`Principal`]: who is asking, built once per request from the user's groups, direct
//! permissions and branch/region assignments.

use std::collections::BTreeSet;

use leopard_core::UserId;

use crate::catalogue::{Permission, PermissionSet};
use crate::role::{Role, Scope};

/// The authenticated user as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user_id: UserId,
    groups: Vec<String>,
    roles: Vec<Role>,
    permissions: PermissionSet,
    branch_ids: BTreeSet<i64>,
    region_ids: BTreeSet<i64>,
    region_branch_ids: BTreeSet<i64>,
    scope: Option<Scope>,
    /// The branches the scope reaches, computed once so decisions never allocate.
    covered: BTreeSet<i64>,
    /// The regions holding one of `branch_ids` (see [`Principal::with_branch_regions`]).
    branch_region_ids: BTreeSet<i64>,
    /// The regions the scope reaches.
    covered_regions: BTreeSet<i64>,
}

impl Principal {
    /// Builds a principal.
    ///
    /// - `groups`: the user's groups with each group's permission set (built-in roles are
    ///   recognised by name; any other group is a custom group);
    /// - `direct`: permissions given to the user outside any group;
    /// - `branch_ids`, `region_ids`: the user's assignments;
    /// - `region_branch_ids`: the branches inside `region_ids`.
    ///
    /// The effective scope is the widest of the user's roles' scopes; a custom group (or direct
    /// permissions) confers the scope of the user's assignments: regions if any, else branches if
    /// any, else own records. A user with no group and no permission has no scope and is denied
    /// everything.
    pub fn new<G, S>(
        user_id: UserId,
        groups: G,
        direct: PermissionSet,
        branch_ids: impl IntoIterator<Item = i64>,
        region_ids: impl IntoIterator<Item = i64>,
        region_branch_ids: impl IntoIterator<Item = i64>,
    ) -> Self
    where
        G: IntoIterator<Item = (S, PermissionSet)>,
        S: Into<String>,
    {
        let branch_ids: BTreeSet<i64> = branch_ids.into_iter().collect();
        let region_ids: BTreeSet<i64> = region_ids.into_iter().collect();
        let region_branch_ids: BTreeSet<i64> = region_branch_ids.into_iter().collect();
        let assignment_scope = if !region_ids.is_empty() {
            Scope::Regions
        } else if !branch_ids.is_empty() {
            Scope::Branches
        } else {
            Scope::Own
        };
        let mut names = Vec::new();
        let mut roles = Vec::new();
        let mut permissions = direct;
        let mut scope = (!direct.is_empty()).then_some(assignment_scope);
        for (name, set) in groups {
            let name = name.into();
            let group_scope = match Role::from_group_name(&name) {
                Some(role) => {
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                    role.scope()
                }
                None => assignment_scope,
            };
            scope = scope.max(Some(group_scope));
            permissions = permissions.union(&set);
            names.push(name);
        }
        roles.sort();
        if permissions.is_empty() {
            scope = None;
        }
        let covered = match scope {
            Some(Scope::Regions) => region_branch_ids.union(&branch_ids).copied().collect(),
            Some(Scope::Branches) => branch_ids.clone(),
            Some(Scope::Own | Scope::Tenant) | None => BTreeSet::new(),
        };
        let mut principal = Self {
            user_id,
            groups: names,
            roles,
            permissions,
            branch_ids,
            region_ids,
            region_branch_ids,
            scope,
            covered,
            branch_region_ids: BTreeSet::new(),
            covered_regions: BTreeSet::new(),
        };
        principal.cover_regions();
        principal
    }

    /// The same principal, knowing the regions that hold its branches (`branch_region_ids`):
    /// region rows are reached through them. Region scope reaches the user's regions and the
    /// regions of its branches; branch scope the regions of its branches; own scope none.
    #[must_use]
    pub fn with_branch_regions(mut self, branch_region_ids: impl IntoIterator<Item = i64>) -> Self {
        self.branch_region_ids = branch_region_ids.into_iter().collect();
        self.cover_regions();
        self
    }

    fn cover_regions(&mut self) {
        self.covered_regions = match self.scope {
            Some(Scope::Regions) => self
                .region_ids
                .union(&self.branch_region_ids)
                .copied()
                .collect(),
            Some(Scope::Branches) => self.branch_region_ids.clone(),
            Some(Scope::Own | Scope::Tenant) | None => BTreeSet::new(),
        };
    }

    /// A principal holding exactly `role` with its default permissions (handy in tests and
    /// seeds).
    pub fn with_role(
        user_id: UserId,
        role: Role,
        branch_ids: impl IntoIterator<Item = i64>,
        region_ids: impl IntoIterator<Item = i64>,
        region_branch_ids: impl IntoIterator<Item = i64>,
    ) -> Self {
        Self::new(
            user_id,
            [(role.group_name(), role.default_permissions())],
            PermissionSet::new(),
            branch_ids,
            region_ids,
            region_branch_ids,
        )
    }

    /// The user's id.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The names of the user's groups.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The built-in roles among the user's groups, highest first.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The highest built-in role the user holds.
    pub fn highest_role(&self) -> Option<Role> {
        self.roles.first().copied()
    }

    /// The effective permissions (groups ∪ direct).
    pub fn permissions(&self) -> &PermissionSet {
        &self.permissions
    }

    /// Whether the user holds `permission`.
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// The user's branches.
    pub fn branch_ids(&self) -> &BTreeSet<i64> {
        &self.branch_ids
    }

    /// The user's regions.
    pub fn region_ids(&self) -> &BTreeSet<i64> {
        &self.region_ids
    }

    /// The branches inside the user's regions.
    pub fn region_branch_ids(&self) -> &BTreeSet<i64> {
        &self.region_branch_ids
    }

    /// The effective scope; `None` when the user has no permission at all.
    pub fn scope(&self) -> Option<Scope> {
        self.scope
    }

    /// The branches whose rows the user's scope covers (empty for own and tenant scope: tenant
    /// scope covers every row without listing branches).
    pub(crate) fn covered_branches(&self) -> &BTreeSet<i64> {
        &self.covered
    }

    /// The regions holding one of the user's branches.
    pub fn branch_region_ids(&self) -> &BTreeSet<i64> {
        &self.branch_region_ids
    }

    /// The regions whose rows the user's scope covers (empty for own and tenant scope).
    pub(crate) fn covered_regions(&self) -> &BTreeSet<i64> {
        &self.covered_regions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Action, ResourceKind};

    fn custom() -> PermissionSet {
        PermissionSet::of(ResourceKind::Client, &[Action::View])
    }

    #[test]
    fn a_user_with_no_group_and_no_permission_has_no_scope() {
        let p = Principal::new(
            UserId(1),
            Vec::<(String, PermissionSet)>::new(),
            PermissionSet::new(),
            [1],
            [2],
            [3],
        );
        assert_eq!(p.scope(), None);
        assert!(p.permissions().is_empty());
    }

    #[test]
    fn the_effective_scope_is_the_widest_of_the_roles() {
        let p = Principal::new(
            UserId(1),
            [
                ("CONSULTANT", Role::Consultant.default_permissions()),
                ("REGION_MANAGER", Role::RegionManager.default_permissions()),
            ],
            PermissionSet::new(),
            [1],
            [],
            [],
        );
        assert_eq!(p.scope(), Some(Scope::Regions));
        assert_eq!(p.roles(), &[Role::RegionManager, Role::Consultant]);
        assert_eq!(p.highest_role(), Some(Role::RegionManager));
        assert_eq!(p.groups(), &["CONSULTANT", "REGION_MANAGER"]);
    }

    #[test]
    fn a_custom_group_takes_its_scope_from_the_assignments() {
        let with = |branches: Vec<i64>, regions: Vec<i64>| {
            Principal::new(
                UserId(1),
                [("Auditors", custom())],
                PermissionSet::new(),
                branches,
                regions,
                [],
            )
            .scope()
        };
        assert_eq!(with(vec![1], vec![2]), Some(Scope::Regions));
        assert_eq!(with(vec![1], vec![]), Some(Scope::Branches));
        assert_eq!(with(vec![], vec![]), Some(Scope::Own));
    }

    #[test]
    fn direct_permissions_alone_take_the_scope_of_the_assignments() {
        let p = Principal::new(
            UserId(1),
            Vec::<(String, PermissionSet)>::new(),
            custom(),
            [4],
            [],
            [],
        );
        assert_eq!(p.scope(), Some(Scope::Branches));
        assert!(p.has(Permission::new(ResourceKind::Client, Action::View)));
    }

    #[test]
    fn region_scope_covers_region_branches_and_own_branches() {
        let p = Principal::with_role(UserId(1), Role::RegionManager, [9], [1], [2, 3]);
        assert_eq!(p.covered_branches(), &BTreeSet::from([2, 3, 9]));
        let c = Principal::with_role(UserId(1), Role::Consultant, [9], [1], [2, 3]);
        assert_eq!(c.covered_branches(), &BTreeSet::from([9]));
    }
}
