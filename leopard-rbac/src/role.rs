//! The built-in roles (Django groups), their default permissions, and [`Scope`].

use std::fmt;
use std::str::FromStr;

use crate::catalogue::{Action, Permission, PermissionSet, ResourceKind};
use crate::RbacError;

/// How far a principal's row access reaches, narrowest first (so `max` is the widest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Only rows tied to the user (assignee or creator).
    Own,
    /// Rows of the user's branches.
    Branches,
    /// Rows of the branches inside the user's regions (and of the user's own branches).
    Regions,
    /// Every row of the tenant.
    Tenant,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Own => "own records",
            Scope::Branches => "the user's branches",
            Scope::Regions => "the user's regions",
            Scope::Tenant => "the whole tenant",
        })
    }
}

/// A built-in role: one of the four groups every tenant is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `SUPER_ADMIN`: everything, tenant-wide.
    SuperAdmin,
    /// `REGION_MANAGER`: client work and branch management in the user's regions.
    RegionManager,
    /// `BRANCH_ADMIN`: nearly everything, in the user's branches.
    BranchAdmin,
    /// `CONSULTANT`: client work in the user's branches.
    Consultant,
}

impl Role {
    /// Every built-in role, highest first.
    pub const ALL: [Role; 4] = [
        Role::SuperAdmin,
        Role::RegionManager,
        Role::BranchAdmin,
        Role::Consultant,
    ];

    /// The group name (`SUPER_ADMIN`, …).
    pub const fn group_name(self) -> &'static str {
        match self {
            Role::SuperAdmin => "SUPER_ADMIN",
            Role::RegionManager => "REGION_MANAGER",
            Role::BranchAdmin => "BRANCH_ADMIN",
            Role::Consultant => "CONSULTANT",
        }
    }

    /// The display name (`Super Admin`, …).
    pub const fn display_name(self) -> &'static str {
        match self {
            Role::SuperAdmin => "Super Admin",
            Role::RegionManager => "Region Manager",
            Role::BranchAdmin => "Branch Admin",
            Role::Consultant => "Consultant",
        }
    }

    /// The role whose group is called `name`, if it is a built-in one.
    pub fn from_group_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.group_name() == name)
    }

    /// The row scope the role confers.
    pub const fn scope(self) -> Scope {
        match self {
            Role::SuperAdmin => Scope::Tenant,
            Role::RegionManager => Scope::Regions,
            Role::BranchAdmin | Role::Consultant => Scope::Branches,
        }
    }

    /// The roles an actor holding this role may grant (strictly below it).
    pub const fn grantable(self) -> &'static [Role] {
        match self {
            Role::SuperAdmin => &[Role::RegionManager, Role::BranchAdmin, Role::Consultant],
            Role::RegionManager => &[Role::BranchAdmin, Role::Consultant],
            Role::BranchAdmin => &[Role::Consultant],
            Role::Consultant => &[],
        }
    }

    /// The permissions the role's group is given when a tenant is set up: the original's
    /// (§4.2, [`Role::original_permissions`]) plus [`Role::crm_additions`].
    pub fn default_permissions(self) -> PermissionSet {
        self.original_permissions().union(&self.crm_additions())
    }

    /// What Leopard grants beyond the original's §4.2 sets: the original let any authenticated
    /// user (or any holder of `view_client`) use reminders, calendar events, the language-exam
    /// list and the client profile sections without a matching permission. With verb-level
    /// permissions on every resource, the Region Manager and the Consultant need them to keep
    /// doing so. Super and Branch Admins already hold everything.
    pub fn crm_additions(self) -> PermissionSet {
        use Action::{Add, Change, Delete, View};
        use ResourceKind as K;
        const EVERYTHING: &[Action] = &[View, Add, Change, Delete];
        match self {
            Role::SuperAdmin | Role::BranchAdmin => PermissionSet::new(),
            Role::RegionManager | Role::Consultant => grants(&[
                (K::Lpe, &[View]),
                (K::Passport, EVERYTHING),
                (K::Proficiency, EVERYTHING),
                (K::Qualification, EVERYTHING),
                (K::Employment, EVERYTHING),
                (K::Reminder, EVERYTHING),
                (K::CalendarEvent, EVERYTHING),
            ]),
        }
    }

    /// The permissions of the role's group in the original (spec §4.2).
    pub fn original_permissions(self) -> PermissionSet {
        use Action::{Add, Change, Delete, View};
        use ResourceKind as K;
        match self {
            Role::SuperAdmin => PermissionSet::all(),
            Role::BranchAdmin => {
                let mut set = PermissionSet::all();
                set.remove(Permission::new(K::Branch, Add));
                set.remove(Permission::new(K::Branch, Change));
                set.remove(Permission::new(K::Branch, Delete));
                set.remove(Permission::CHANGE_GROUP);
                set
            }
            Role::RegionManager => grants(&[
                (K::Client, &[View, Add, Change, Delete]),
                (K::VisaApplication, &[View, Add, Change, Delete]),
                (K::Task, &[View, Add, Change, Delete]),
                (K::Notification, &[View, Add]),
                (K::Branch, &[View, Add, Change]),
                (K::Region, &[View]),
                (K::User, &[View, Change]),
                (K::Note, &[View, Add, Change, Delete]),
                (K::ClientActivity, &[View]),
                (K::ProfilePicture, &[View, Add, Change, Delete]),
                (K::Institute, &[View, Add, Change, Delete]),
            ]),
            Role::Consultant => grants(&[
                (K::Client, &[View, Add, Change]),
                (K::VisaApplication, &[View, Add, Change]),
                (K::Task, &[View, Add, Change]),
                (K::Notification, &[View]),
                (K::User, &[View]),
                (K::Note, &[View, Add, Change]),
                (K::ClientActivity, &[View]),
                (K::ProfilePicture, &[View, Add, Change]),
                (K::Institute, &[View]),
            ]),
        }
    }
}

fn grants(list: &[(ResourceKind, &[Action])]) -> PermissionSet {
    list.iter()
        .flat_map(|(kind, actions)| PermissionSet::of(*kind, actions).iter().collect::<Vec<_>>())
        .collect()
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

impl FromStr for Role {
    type Err = RbacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_group_name(s).ok_or_else(|| RbacError::UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(codename: &str) -> Permission {
        Permission::from_codename(codename).expect("known codename")
    }

    #[test]
    fn super_admin_has_every_permission_including_the_group_ones() {
        let set = Role::SuperAdmin.default_permissions();
        assert_eq!(set.len(), Permission::COUNT);
        assert!(set.contains(Permission::VIEW_GROUP));
        assert!(set.contains(Permission::CHANGE_GROUP));
    }

    #[test]
    fn branch_admin_is_super_admin_minus_branch_writes_and_change_group() {
        let sa = Role::SuperAdmin.default_permissions();
        let ba = Role::BranchAdmin.default_permissions();
        let missing: Vec<_> = sa.difference(&ba).codenames();
        assert_eq!(
            missing,
            vec![
                "add_branch",
                "change_branch",
                "delete_branch",
                "change_group"
            ]
        );
        for kept in [
            "view_branch",
            "view_group",
            "add_user",
            "delete_region",
            "view_team_events",
        ] {
            assert!(ba.contains(p(kept)), "{kept}");
        }
    }

    #[test]
    fn region_manager_gets_exactly_the_listed_permissions() {
        let set = Role::RegionManager.original_permissions();
        assert_eq!(set.len(), 4 * 6 + 2 + 3 + 1 + 2 + 1);
        for has in [
            "delete_client",
            "add_notification",
            "change_branch",
            "view_region",
        ] {
            assert!(set.contains(p(has)), "{has}");
        }
        for lacks in [
            "delete_branch",
            "add_user",
            "view_agent",
            "change_notification",
        ] {
            assert!(!set.contains(p(lacks)), "{lacks}");
        }
    }

    #[test]
    fn consultant_gets_exactly_the_listed_permissions() {
        let set = Role::Consultant.original_permissions();
        assert_eq!(set.len(), 3 * 5 + 4);
        for lacks in [
            "delete_client",
            "delete_profilepicture",
            "view_branch",
            "add_user",
        ] {
            assert!(!set.contains(p(lacks)), "{lacks}");
        }
        assert!(set.is_subset(&Role::BranchAdmin.default_permissions()));
    }

    #[test]
    fn region_managers_and_consultants_gain_the_resources_the_original_left_open() {
        for role in [Role::RegionManager, Role::Consultant] {
            let set = role.default_permissions();
            for has in [
                "view_lpe",
                "change_passport",
                "add_proficiency",
                "delete_employment",
                "view_qualification",
                "add_reminder",
                "delete_calendarevent",
            ] {
                assert!(set.contains(p(has)), "{role}: {has}");
            }
            assert!(!set.contains(p("add_lpe")), "{role}: add_lpe");
            assert!(
                !set.contains(p("view_team_events")),
                "{role}: view_team_events"
            );
            assert_eq!(
                set.len(),
                role.original_permissions().len() + 1 + 6 * 4,
                "{role}"
            );
        }
        for role in [Role::SuperAdmin, Role::BranchAdmin] {
            assert!(role.crm_additions().is_empty());
        }
        for role in Role::ALL {
            assert!(role.default_permissions().is_subset(
                &Role::BranchAdmin
                    .default_permissions()
                    .union(&Role::SuperAdmin.default_permissions())
            ));
        }
    }

    #[test]
    fn roles_map_to_their_group_names_display_names_and_scopes() {
        assert_eq!(Role::from_group_name("SUPER_ADMIN"), Some(Role::SuperAdmin));
        assert_eq!("CONSULTANT".parse::<Role>(), Ok(Role::Consultant));
        assert!("COUNTRY_MANAGER".parse::<Role>().is_err());
        assert_eq!(Role::RegionManager.to_string(), "Region Manager");
        assert_eq!(Role::SuperAdmin.scope(), Scope::Tenant);
        assert_eq!(Role::RegionManager.scope(), Scope::Regions);
        assert_eq!(Role::BranchAdmin.scope(), Scope::Branches);
        assert_eq!(Role::Consultant.scope(), Scope::Branches);
        assert!(Scope::Tenant > Scope::Regions && Scope::Branches > Scope::Own);
    }
}
