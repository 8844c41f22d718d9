//! The policy: [`check`] decides one row with an explanation, [`filter`] renders the same
//! decision as a SQL predicate for lists. Both go through one [`Plan`], so they agree by
//! construction (and a property test against PostgreSQL keeps it that way).
//!
//! Row rules per kind (spec README §2):
//! - a client and everything that belongs to a client (note, client activity, reminder, profile
//!   sections, profile picture, visa and college applications) follows the client's branch;
//! - a branch follows its own id;
//! - a region is tenant-wide to view; writing one needs tenant scope;
//! - master data (agents, visa categories and types, language exams, institutes and their
//!   children, course levels, fields, courses, application types, stages) is tenant-wide, gated
//!   only by the permission;
//! - a notification is its owner's only, whatever the scope;
//! - a task or a user is visible to its owners (assignee/creator, or the user themself) and to
//!   the scope covering its branch;
//! - a calendar event is its owners'; with `view_team_events` also the scope's.
//!
//! A row whose branch is `NULL` is out of every branch scope (only tenant scope or ownership
//! reaches it).

use std::collections::BTreeSet;
use std::fmt;

use crate::catalogue::{Action, Permission, ResourceKind};
use crate::principal::Principal;
use crate::role::Scope;

/// The row being decided: its kind, its branch (for client-owned rows, the client's branch),
/// its region (for a region row, its own id) and the users it is tied to (assignee, creator, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// What kind of row this is.
    pub kind: ResourceKind,
    /// The branch the row belongs to, if any.
    pub branch_id: Option<i64>,
    /// The region the row is (a region row's own id), if any.
    pub region_id: Option<i64>,
    /// The users the row is tied to.
    pub owner_ids: Vec<i64>,
}

impl Resource {
    /// A row of `kind` in `branch_id`, tied to nobody.
    pub fn new(kind: ResourceKind, branch_id: Option<i64>) -> Self {
        Self {
            kind,
            branch_id,
            region_id: None,
            owner_ids: Vec::new(),
        }
    }

    /// Region `id` itself (a row of [`ResourceKind::Region`]).
    pub fn region(id: i64) -> Self {
        Self {
            region_id: Some(id),
            ..Self::new(ResourceKind::Region, None)
        }
    }

    /// The same row, tied to `owner_ids`.
    #[must_use]
    pub fn owned_by(mut self, owner_ids: impl IntoIterator<Item = i64>) -> Self {
        self.owner_ids = owner_ids.into_iter().collect();
        self
    }
}

/// Why access was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// The principal lacks the permission with this codename.
    MissingPermission(&'static str),
    /// The principal has the permission but the row is outside its scope.
    OutOfScope,
}

/// The outcome of [`check`], with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by `permission`, because the row is within `scope`.
    Granted {
        /// The permission that allowed it.
        permission: Permission,
        /// The scope through which the row was reached ([`Scope::Own`] when by ownership).
        scope: Scope,
    },
    /// Denied.
    Denied(DenyReason),
}

impl Decision {
    /// Whether access is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Granted { .. })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Granted { permission, scope } => write!(
                f,
                "allowed by {} ({}) within {scope}",
                permission.qualified(),
                permission.name()
            ),
            Decision::Denied(DenyReason::MissingPermission(codename)) => {
                write!(f, "denied: missing permission {codename}")
            }
            Decision::Denied(DenyReason::OutOfScope) => {
                f.write_str("denied: the record is outside the user's scope")
            }
        }
    }
}

/// How a kind's rows are scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowRule {
    /// Tenant-wide; the permission is the only gate.
    Tenant,
    /// By branch.
    Branch,
    /// Region rows: by the regions the scope covers.
    Region,
    /// By owner only.
    Own,
    /// By owner or branch.
    OwnOrBranch,
    /// By owner; also by branch with `view_team_events`.
    OwnOrTeam,
}

fn rule(kind: ResourceKind) -> RowRule {
    use ResourceKind as K;
    match kind {
        K::Agent
        | K::VisaCategory
        | K::VisaType
        | K::Lpe
        | K::Institute
        | K::InstituteContactPerson
        | K::InstituteRequirement
        | K::InstituteLocation
        | K::InstituteIntake
        | K::CourseLevel
        | K::BroadField
        | K::NarrowField
        | K::Course
        | K::ApplicationType
        | K::Stage => RowRule::Tenant,
        K::Region => RowRule::Region,
        K::Branch
        | K::Client
        | K::VisaApplication
        | K::Proficiency
        | K::Qualification
        | K::Passport
        | K::Employment
        | K::Note
        | K::ClientActivity
        | K::ProfilePicture
        | K::Reminder
        | K::CollegeApplication => RowRule::Branch,
        K::Notification => RowRule::Own,
        K::Task | K::User => RowRule::OwnOrBranch,
        K::CalendarEvent => RowRule::OwnOrTeam,
    }
}

/// What a principal may reach for one (action, kind): the single source of truth of both
/// [`check`] and [`filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan<'p> {
    permission: Permission,
    /// Every row.
    everything: bool,
    /// Rows whose branch is one of these (borrowed from the principal: no allocation).
    branches: &'p BTreeSet<i64>,
    /// The scope through which `branches` is reached.
    branch_scope: Scope,
    /// Region rows whose id is one of these.
    regions: &'p BTreeSet<i64>,
    /// Rows owned by the principal.
    own: bool,
}

/// The empty id set of plans that reach no branch or region.
static NO_IDS: BTreeSet<i64> = BTreeSet::new();

fn plan<'p>(
    principal: &'p Principal,
    action: Action,
    kind: ResourceKind,
) -> Result<Plan<'p>, DenyReason> {
    let permission = Permission::new(kind, action);
    if !principal.has(permission) {
        return Err(DenyReason::MissingPermission(permission.codename()));
    }
    let scope = principal.scope().ok_or(DenyReason::OutOfScope)?;
    let mut plan = Plan {
        permission,
        everything: false,
        branches: &NO_IDS,
        branch_scope: scope,
        regions: &NO_IDS,
        own: false,
    };
    let by_scope = |plan: &mut Plan<'p>| {
        if scope == Scope::Tenant {
            plan.everything = true;
        } else {
            plan.branches = principal.covered_branches();
        }
    };
    match rule(kind) {
        RowRule::Tenant => plan.everything = true,
        // Viewing reaches the covered regions; writing a region needs tenant scope.
        RowRule::Region => {
            if scope == Scope::Tenant {
                plan.everything = true;
            } else if action == Action::View {
                plan.regions = principal.covered_regions();
            }
        }
        RowRule::Branch => by_scope(&mut plan),
        RowRule::Own => plan.own = true,
        RowRule::OwnOrBranch => {
            plan.own = true;
            by_scope(&mut plan);
        }
        RowRule::OwnOrTeam => {
            plan.own = true;
            if principal.has(Permission::VIEW_TEAM_EVENTS) {
                by_scope(&mut plan);
            }
        }
    }
    Ok(plan)
}

/// Decides whether `principal` may perform `action` on `resource`, and why.
pub fn check(principal: &Principal, action: Action, resource: &Resource) -> Decision {
    let plan = match plan(principal, action, resource.kind) {
        Ok(plan) => plan,
        Err(reason) => return Decision::Denied(reason),
    };
    let granted = |scope| Decision::Granted {
        permission: plan.permission,
        scope,
    };
    if plan.everything {
        return granted(Scope::Tenant);
    }
    if resource
        .branch_id
        .is_some_and(|b| plan.branches.contains(&b))
    {
        return granted(plan.branch_scope);
    }
    if resource
        .region_id
        .is_some_and(|r| plan.regions.contains(&r))
    {
        return granted(plan.branch_scope);
    }
    if plan.own && resource.owner_ids.contains(&principal.user_id().get()) {
        return granted(Scope::Own);
    }
    Decision::Denied(DenyReason::OutOfScope)
}

/// The columns that hold a kind's scope in the query being filtered. Column names are trusted
/// code, never user input: they are spliced into SQL as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeColumns<'a> {
    /// The branch column (for client-owned rows, the client's branch, e.g. `c.branch_id`).
    pub branch: &'a str,
    /// The owner columns (assignee, creator, …); [`Resource::owner_ids`] holds their values.
    pub owners: &'a [&'a str],
    /// The region column (a region row's `id`; `NULL` for kinds not scoped by region).
    pub region: &'a str,
}

/// A parameter of a [`SqlPredicate`], bound in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlParam {
    /// A `bigint`.
    Int(i64),
    /// A `bigint[]`.
    IntArray(Vec<i64>),
}

/// A boolean SQL expression with numbered placeholders and their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlPredicate {
    /// The expression (`TRUE`, `FALSE`, or placeholders `$n` from the first parameter number).
    pub sql: String,
    /// The values of the placeholders, in order.
    pub params: Vec<SqlParam>,
}

impl SqlPredicate {
    fn constant(value: bool) -> Self {
        Self {
            sql: if value { "TRUE" } else { "FALSE" }.to_owned(),
            params: Vec::new(),
        }
    }
}

impl fmt::Display for SqlPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

/// The SQL predicate selecting exactly the rows of `kind` for which [`check`] allows `action`.
///
/// Placeholders are numbered from `first_param` (so the predicate can follow the query's own
/// parameters). It agrees with [`check`]: a `NULL` branch or `NULL` owner never matches.
pub fn filter(
    principal: &Principal,
    action: Action,
    kind: ResourceKind,
    columns: &ScopeColumns<'_>,
    first_param: usize,
) -> SqlPredicate {
    let Ok(plan) = plan(principal, action, kind) else {
        return SqlPredicate::constant(false);
    };
    if plan.everything {
        return SqlPredicate::constant(true);
    }
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for (column, ids) in [
        (columns.branch, plan.branches),
        (columns.region, plan.regions),
    ] {
        if !ids.is_empty() {
            parts.push(format!("{column} = ANY(${})", first_param + params.len()));
            params.push(SqlParam::IntArray(ids.iter().copied().collect()));
        }
    }
    if plan.own && !columns.owners.is_empty() {
        let n = first_param + params.len();
        parts.extend(columns.owners.iter().map(|c| format!("{c} = ${n}")));
        params.push(SqlParam::Int(principal.user_id().get()));
    }
    if parts.is_empty() {
        return SqlPredicate::constant(false);
    }
    SqlPredicate {
        sql: format!("({})", parts.join(" OR ")),
        params,
    }
}

#[cfg(test)]
mod tests {
    use leopard_core::UserId;

    use super::*;
    use crate::catalogue::PermissionSet;
    use crate::role::Role;

    const COLS: ScopeColumns<'static> = ScopeColumns {
        branch: "branch_id",
        owners: &["assigned_to_id"],
        region: "NULL",
    };

    fn consultant() -> Principal {
        Principal::with_role(UserId(7), Role::Consultant, [1, 2], [], [])
    }

    fn region_manager() -> Principal {
        Principal::with_role(UserId(8), Role::RegionManager, [], [10], [3, 4])
    }

    fn super_admin() -> Principal {
        Principal::with_role(UserId(9), Role::SuperAdmin, [], [], [])
    }

    fn nobody() -> Principal {
        Principal::new(
            UserId(5),
            Vec::<(String, PermissionSet)>::new(),
            PermissionSet::new(),
            [1],
            [10],
            [3],
        )
    }

    fn client(branch: Option<i64>) -> Resource {
        Resource::new(ResourceKind::Client, branch)
    }

    #[test]
    fn a_consultant_sees_every_client_of_their_branches_and_no_other() {
        let p = consultant();
        let d = check(&p, Action::View, &client(Some(2)));
        assert_eq!(
            d,
            Decision::Granted {
                permission: Permission::new(ResourceKind::Client, Action::View),
                scope: Scope::Branches
            }
        );
        assert_eq!(
            check(&p, Action::View, &client(Some(3))),
            Decision::Denied(DenyReason::OutOfScope)
        );
    }

    #[test]
    fn a_consultant_may_not_delete_a_client_even_in_their_branch() {
        assert_eq!(
            check(&consultant(), Action::Delete, &client(Some(1))),
            Decision::Denied(DenyReason::MissingPermission("delete_client"))
        );
    }

    #[test]
    fn a_region_manager_reaches_the_branches_of_their_regions() {
        let p = region_manager();
        assert!(check(&p, Action::Change, &client(Some(4))).allowed());
        assert!(!check(&p, Action::Change, &client(Some(1))).allowed());
        let branch = Resource::new(ResourceKind::Branch, Some(3));
        assert!(check(&p, Action::Change, &branch).allowed());
        assert!(!check(&p, Action::Delete, &branch).allowed());
    }

    #[test]
    fn a_super_admin_reaches_every_row_including_rows_without_a_branch() {
        let d = check(&super_admin(), Action::Delete, &client(None));
        assert_eq!(
            d,
            Decision::Granted {
                permission: Permission::new(ResourceKind::Client, Action::Delete),
                scope: Scope::Tenant
            }
        );
    }

    #[test]
    fn a_row_without_a_branch_is_out_of_every_branch_scope() {
        assert!(!check(&consultant(), Action::View, &client(None)).allowed());
        let note = Resource::new(ResourceKind::Note, None).owned_by([7]);
        assert!(!check(&consultant(), Action::View, &note).allowed());
    }

    #[test]
    fn a_user_with_nothing_is_denied_everything() {
        let p = nobody();
        for kind in ResourceKind::ALL {
            for action in Action::ALL {
                let r = Resource::new(*kind, Some(1)).owned_by([5]);
                assert!(!check(&p, action, &r).allowed());
                assert_eq!(filter(&p, action, *kind, &COLS, 1).sql, "FALSE");
            }
        }
    }

    #[test]
    fn notifications_are_their_owners_only_even_for_a_super_admin() {
        let mine = Resource::new(ResourceKind::Notification, Some(1)).owned_by([9]);
        let theirs = Resource::new(ResourceKind::Notification, Some(1)).owned_by([7]);
        let d = check(&super_admin(), Action::View, &mine);
        assert!(matches!(
            d,
            Decision::Granted {
                scope: Scope::Own,
                ..
            }
        ));
        assert!(!check(&super_admin(), Action::View, &theirs).allowed());
    }

    #[test]
    fn a_task_is_visible_to_its_assignee_and_to_its_branch() {
        let p = consultant();
        let elsewhere_mine = Resource::new(ResourceKind::Task, Some(99)).owned_by([7]);
        let in_branch = Resource::new(ResourceKind::Task, Some(1)).owned_by([3]);
        let neither = Resource::new(ResourceKind::Task, None).owned_by([3]);
        assert!(check(&p, Action::View, &elsewhere_mine).allowed());
        assert!(check(&p, Action::View, &in_branch).allowed());
        assert!(!check(&p, Action::View, &neither).allowed());
    }

    #[test]
    fn master_data_is_tenant_wide_but_permission_gated() {
        let institute = Resource::new(ResourceKind::Institute, None);
        assert!(check(&consultant(), Action::View, &institute).allowed());
        assert_eq!(
            check(&consultant(), Action::Add, &institute),
            Decision::Denied(DenyReason::MissingPermission("add_institute"))
        );
        assert_eq!(
            filter(
                &consultant(),
                Action::View,
                ResourceKind::Institute,
                &COLS,
                1
            )
            .sql,
            "TRUE"
        );
    }

    #[test]
    fn regions_are_read_within_the_scope_and_written_only_with_tenant_scope() {
        // Branch 1 lies in region 5; region 6 holds none of the admin's branches.
        let ba = Principal::with_role(UserId(3), Role::BranchAdmin, [1], [], [])
            .with_branch_regions([5]);
        assert!(check(&ba, Action::View, &Resource::region(5)).allowed());
        assert_eq!(
            check(&ba, Action::View, &Resource::region(6)),
            Decision::Denied(DenyReason::OutOfScope)
        );
        assert_eq!(
            check(&ba, Action::Delete, &Resource::region(5)),
            Decision::Denied(DenyReason::OutOfScope)
        );
        let rm = region_manager();
        assert!(check(&rm, Action::View, &Resource::region(10)).allowed());
        assert!(!check(&rm, Action::View, &Resource::region(11)).allowed());
        let sa = super_admin();
        assert!(check(&sa, Action::View, &Resource::region(11)).allowed());
        assert!(check(&sa, Action::Delete, &Resource::region(11)).allowed());
        assert!(check(&sa, Action::Add, &Resource::new(ResourceKind::Region, None)).allowed());
        let f = filter(
            &ba,
            Action::View,
            ResourceKind::Region,
            &ScopeColumns {
                branch: "NULL",
                owners: &[],
                region: "r.id",
            },
            1,
        );
        assert_eq!(f.sql, "(r.id = ANY($1))");
        assert_eq!(f.params, vec![SqlParam::IntArray(vec![5])]);
    }

    #[test]
    fn team_calendar_events_need_the_team_permission() {
        let ba = Principal::with_role(UserId(3), Role::BranchAdmin, [1], [], []);
        let team_event = Resource::new(ResourceKind::CalendarEvent, Some(1)).owned_by([4]);
        assert!(check(&ba, Action::View, &team_event).allowed());
        let mut perms = Role::BranchAdmin.default_permissions();
        perms.remove(Permission::VIEW_TEAM_EVENTS);
        let no_team = Principal::new(
            UserId(3),
            [("BRANCH_ADMIN", perms)],
            PermissionSet::new(),
            [1],
            [],
            [],
        );
        assert!(!check(&no_team, Action::View, &team_event).allowed());
        let own_event = Resource::new(ResourceKind::CalendarEvent, None).owned_by([3]);
        assert!(check(&no_team, Action::View, &own_event).allowed());
    }

    #[test]
    fn a_custom_group_without_assignments_reaches_only_its_own_tasks() {
        let p = Principal::new(
            UserId(4),
            [("Helpers", PermissionSet::crud(ResourceKind::Task))],
            PermissionSet::new(),
            [],
            [],
            [],
        );
        assert!(check(
            &p,
            Action::View,
            &Resource::new(ResourceKind::Task, Some(1)).owned_by([4])
        )
        .allowed());
        assert!(!check(
            &p,
            Action::View,
            &Resource::new(ResourceKind::Task, Some(1))
        )
        .allowed());
        assert_eq!(
            filter(&p, Action::View, ResourceKind::Task, &COLS, 3),
            SqlPredicate {
                sql: "(assigned_to_id = $3)".to_owned(),
                params: vec![SqlParam::Int(4)]
            }
        );
    }

    #[test]
    fn the_filter_numbers_placeholders_from_the_first_parameter() {
        let cols = ScopeColumns {
            branch: "c.branch_id",
            owners: &["t.assigned_to_id", "t.created_by_id"],
            region: "NULL",
        };
        let f = filter(&consultant(), Action::View, ResourceKind::Task, &cols, 2);
        assert_eq!(
            f.sql,
            "(c.branch_id = ANY($2) OR t.assigned_to_id = $3 OR t.created_by_id = $3)"
        );
        assert_eq!(
            f.params,
            vec![SqlParam::IntArray(vec![1, 2]), SqlParam::Int(7)]
        );
        assert_eq!(f.to_string(), f.sql);
    }

    #[test]
    fn the_filter_is_false_without_permission_and_true_for_tenant_scope() {
        assert_eq!(
            filter(
                &consultant(),
                Action::Delete,
                ResourceKind::Client,
                &COLS,
                1
            ),
            SqlPredicate {
                sql: "FALSE".to_owned(),
                params: vec![]
            }
        );
        assert_eq!(
            filter(
                &super_admin(),
                Action::Delete,
                ResourceKind::Client,
                &COLS,
                1
            )
            .sql,
            "TRUE"
        );
        let lonely = Principal::with_role(UserId(1), Role::Consultant, [], [], []);
        assert_eq!(
            filter(&lonely, Action::View, ResourceKind::Client, &COLS, 1).sql,
            "FALSE"
        );
    }

    #[test]
    fn decisions_explain_themselves() {
        let granted = check(&consultant(), Action::View, &client(Some(1)));
        assert_eq!(
            granted.to_string(),
            "allowed by immigration.view_client (Can view client) within the user's branches"
        );
        let missing = check(&consultant(), Action::Delete, &client(Some(1)));
        assert_eq!(
            missing.to_string(),
            "denied: missing permission delete_client"
        );
        let out = check(&consultant(), Action::View, &client(Some(5)));
        assert_eq!(
            out.to_string(),
            "denied: the record is outside the user's scope"
        );
    }
}
