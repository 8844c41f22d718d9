//! The permission catalogue: every CRM model × [`Action`], plus four extra permissions, each
//! with a stable small id, a Django-style codename and a human name; and [`PermissionSet`], a
//! bitset over the catalogue.

use std::fmt;
use std::str::FromStr;

use crate::RbacError;

macro_rules! resource_kinds {
    ($($(#[$doc:meta])* $variant:ident => $model:literal,)*) => {
        /// A CRM model that permissions and row scopes are about.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ResourceKind {
            $($(#[$doc])* $variant,)*
        }

        impl ResourceKind {
            /// Every kind, in catalogue order.
            pub const ALL: &'static [ResourceKind] = &[$(ResourceKind::$variant,)*];

            /// The Django model name (`client`, `visaapplication`, …).
            pub const fn model(self) -> &'static str {
                match self {
                    $(ResourceKind::$variant => $model,)*
                }
            }
        }
    };
}

resource_kinds! {
    /// A staff user.
    User => "user",
    /// A region (a group of branches).
    Region => "region",
    /// A branch office.
    Branch => "branch",
    /// An agent (master data).
    Agent => "agent",
    /// A client.
    Client => "client",
    /// A visa category (master data).
    VisaCategory => "visacategory",
    /// A visa type (master data).
    VisaType => "visatype",
    /// A client's visa application.
    VisaApplication => "visaapplication",
    /// A notification (own only).
    Notification => "notification",
    /// A task.
    Task => "task",
    /// A calendar event.
    CalendarEvent => "calendarevent",
    /// A language proficiency exam (master data).
    Lpe => "lpe",
    /// A client's language proficiency result.
    Proficiency => "proficiency",
    /// A client's qualification.
    Qualification => "qualification",
    /// A client's passport.
    Passport => "passport",
    /// A client's employment record.
    Employment => "employment",
    /// A note on a client.
    Note => "note",
    /// A client timeline entry.
    ClientActivity => "clientactivity",
    /// A client's profile picture.
    ProfilePicture => "profilepicture",
    /// A reminder about a client.
    Reminder => "reminder",
    /// An institute (master data).
    Institute => "institute",
    /// An institute's contact person (master data).
    InstituteContactPerson => "institutecontactperson",
    /// An institute's requirement (master data).
    InstituteRequirement => "instituterequirement",
    /// An institute's location (master data).
    InstituteLocation => "institutelocation",
    /// An institute's intake (master data).
    InstituteIntake => "instituteintake",
    /// A course level (master data).
    CourseLevel => "courselevel",
    /// A broad field of study (master data).
    BroadField => "broadfield",
    /// A narrow field of study (master data).
    NarrowField => "narrowfield",
    /// A course (master data).
    Course => "course",
    /// A college application type (master data).
    ApplicationType => "applicationtype",
    /// A college application stage (master data).
    Stage => "stage",
    /// A client's college application.
    CollegeApplication => "collegeapplication",
}

impl ResourceKind {
    /// Looks a kind up by its model name.
    pub fn from_model(model: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.model() == model)
    }

    const fn index(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.model())
    }
}

/// What is done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// List or retrieve.
    View,
    /// Create.
    Add,
    /// Update.
    Change,
    /// Delete (soft or hard).
    Delete,
}

impl Action {
    /// Every action, in catalogue order.
    pub const ALL: [Action; 4] = [Action::View, Action::Add, Action::Change, Action::Delete];

    /// The codename prefix (`view`, `add`, `change`, `delete`).
    pub const fn verb(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Add => "add",
            Action::Change => "change",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

/// Number of model × action permissions.
const MODEL_PERMISSIONS: u16 = 32 * 4;

/// The extra permissions: (codename, human name, content type).
const EXTRAS: [(&str, &str, &str); 4] = [
    (
        "view_team_events",
        "Can view team events",
        "immigration.calendarevent",
    ),
    (
        "assign_calendarevent_to_others",
        "Can assign calendar event to others",
        "immigration.calendarevent",
    ),
    ("view_group", "Can view group", "auth.group"),
    ("change_group", "Can change group", "auth.group"),
];

/// Size of the whole catalogue.
const CATALOGUE_LEN: u16 = MODEL_PERMISSIONS + EXTRAS.len() as u16;

/// Number of `u64` words in a [`PermissionSet`].
const WORDS: usize = (CATALOGUE_LEN as usize).div_ceil(64);

/// One permission of the catalogue, identified by its stable index.
///
/// The order is fixed: for every [`ResourceKind`] in [`ResourceKind::ALL`] order, its four
/// [`Action`]s in [`Action::ALL`] order, then `view_team_events`,
/// `assign_calendarevent_to_others`, `view_group` and `change_group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(u16);

impl Permission {
    /// Permission to see the calendar events of one's team.
    pub const VIEW_TEAM_EVENTS: Permission = Permission(MODEL_PERMISSIONS);
    /// Permission to assign calendar events to other users.
    pub const ASSIGN_CALENDAREVENT_TO_OTHERS: Permission = Permission(MODEL_PERMISSIONS + 1);
    /// Permission to view groups (`auth.view_group`).
    pub const VIEW_GROUP: Permission = Permission(MODEL_PERMISSIONS + 2);
    /// Permission to change groups (`auth.change_group`).
    pub const CHANGE_GROUP: Permission = Permission(MODEL_PERMISSIONS + 3);

    /// Number of permissions in the catalogue.
    pub const COUNT: usize = CATALOGUE_LEN as usize;

    /// The permission to perform `action` on `kind`.
    pub const fn new(kind: ResourceKind, action: Action) -> Self {
        Self(kind.index() * 4 + action as u16)
    }

    /// The permission with catalogue index `id`, if there is one.
    pub const fn from_id(id: u16) -> Option<Self> {
        if id < CATALOGUE_LEN {
            Some(Self(id))
        } else {
            None
        }
    }

    /// Every permission, in catalogue order.
    pub fn all() -> impl Iterator<Item = Permission> {
        (0..CATALOGUE_LEN).map(Permission)
    }

    /// The stable catalogue index.
    pub const fn id(self) -> u16 {
        self.0
    }

    /// The model and action of a model permission; `None` for the extra permissions.
    pub fn model_action(self) -> Option<(ResourceKind, Action)> {
        if self.0 >= MODEL_PERMISSIONS {
            return None;
        }
        let kind = ResourceKind::ALL[usize::from(self.0 / 4)];
        let action = Action::ALL[usize::from(self.0 % 4)];
        Some((kind, action))
    }

    fn extra(self) -> Option<(&'static str, &'static str, &'static str)> {
        self.0
            .checked_sub(MODEL_PERMISSIONS)
            .map(|i| EXTRAS[usize::from(i)])
    }

    /// The Django codename (`view_client`, `view_team_events`, …).
    pub fn codename(self) -> &'static str {
        CODENAMES[usize::from(self.0)]
    }

    /// The human name (`Can view client`).
    pub fn name(self) -> String {
        match (self.model_action(), self.extra()) {
            (Some((kind, action)), _) => format!("Can {} {}", action.verb(), kind.model()),
            (None, Some((_, name, _))) => name.to_owned(),
            (None, None) => unreachable!("a permission is a model permission or an extra"),
        }
    }

    /// The Django content type, `app_label.model` (`immigration.client`, `auth.group`).
    pub fn content_type(self) -> String {
        match (self.model_action(), self.extra()) {
            (Some((kind, _)), _) => format!("immigration.{}", kind.model()),
            (None, Some((_, _, ct))) => ct.to_owned(),
            (None, None) => unreachable!("a permission is a model permission or an extra"),
        }
    }

    /// The app label (`immigration` or `auth`).
    pub fn app_label(self) -> &'static str {
        match self.extra() {
            Some((_, _, ct)) if ct.starts_with("auth.") => "auth",
            _ => "immigration",
        }
    }

    /// `app_label.codename`, as Django's `has_perm` spells it (`immigration.view_client`).
    pub fn qualified(self) -> String {
        format!("{}.{}", self.app_label(), self.codename())
    }

    /// Looks a permission up by codename; an `app_label.` prefix is accepted when it is the
    /// permission's own app label.
    pub fn from_codename(codename: &str) -> Option<Self> {
        let (app, bare) = match codename.split_once('.') {
            Some((app, bare)) => (Some(app), bare),
            None => (None, codename),
        };
        let found = CODENAMES
            .iter()
            .position(|c| *c == bare)
            .and_then(|i| u16::try_from(i).ok())
            .map(Permission)?;
        match app {
            Some(app) if app != found.app_label() => None,
            _ => Some(found),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

impl FromStr for Permission {
    type Err = RbacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_codename(s).ok_or_else(|| RbacError::UnknownPermission(s.to_owned()))
    }
}

/// Codenames in catalogue order, checked against [`ResourceKind::model`] in the tests.
const CODENAMES: [&str; CATALOGUE_LEN as usize] = codenames();

const fn codenames() -> [&'static str; CATALOGUE_LEN as usize] {
    // Spelled out so codenames are `&'static str` without allocation.
    #[rustfmt::skip]
    const M: [&str; 128] = [
        "view_user", "add_user", "change_user", "delete_user",
        "view_region", "add_region", "change_region", "delete_region",
        "view_branch", "add_branch", "change_branch", "delete_branch",
        "view_agent", "add_agent", "change_agent", "delete_agent",
        "view_client", "add_client", "change_client", "delete_client",
        "view_visacategory", "add_visacategory", "change_visacategory", "delete_visacategory",
        "view_visatype", "add_visatype", "change_visatype", "delete_visatype",
        "view_visaapplication", "add_visaapplication", "change_visaapplication", "delete_visaapplication",
        "view_notification", "add_notification", "change_notification", "delete_notification",
        "view_task", "add_task", "change_task", "delete_task",
        "view_calendarevent", "add_calendarevent", "change_calendarevent", "delete_calendarevent",
        "view_lpe", "add_lpe", "change_lpe", "delete_lpe",
        "view_proficiency", "add_proficiency", "change_proficiency", "delete_proficiency",
        "view_qualification", "add_qualification", "change_qualification", "delete_qualification",
        "view_passport", "add_passport", "change_passport", "delete_passport",
        "view_employment", "add_employment", "change_employment", "delete_employment",
        "view_note", "add_note", "change_note", "delete_note",
        "view_clientactivity", "add_clientactivity", "change_clientactivity", "delete_clientactivity",
        "view_profilepicture", "add_profilepicture", "change_profilepicture", "delete_profilepicture",
        "view_reminder", "add_reminder", "change_reminder", "delete_reminder",
        "view_institute", "add_institute", "change_institute", "delete_institute",
        "view_institutecontactperson", "add_institutecontactperson", "change_institutecontactperson", "delete_institutecontactperson",
        "view_instituterequirement", "add_instituterequirement", "change_instituterequirement", "delete_instituterequirement",
        "view_institutelocation", "add_institutelocation", "change_institutelocation", "delete_institutelocation",
        "view_instituteintake", "add_instituteintake", "change_instituteintake", "delete_instituteintake",
        "view_courselevel", "add_courselevel", "change_courselevel", "delete_courselevel",
        "view_broadfield", "add_broadfield", "change_broadfield", "delete_broadfield",
        "view_narrowfield", "add_narrowfield", "change_narrowfield", "delete_narrowfield",
        "view_course", "add_course", "change_course", "delete_course",
        "view_applicationtype", "add_applicationtype", "change_applicationtype", "delete_applicationtype",
        "view_stage", "add_stage", "change_stage", "delete_stage",
        "view_collegeapplication", "add_collegeapplication", "change_collegeapplication", "delete_collegeapplication",
    ];
    let mut out = [""; CATALOGUE_LEN as usize];
    let mut i = 0;
    while i < M.len() {
        out[i] = M[i];
        i += 1;
    }
    let mut j = 0;
    while j < EXTRAS.len() {
        out[M.len() + j] = EXTRAS[j].0;
        j += 1;
    }
    out
}

/// A set of permissions: one bit per catalogue entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet([u64; WORDS]);

impl PermissionSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self([0; WORDS])
    }

    /// Every permission in the catalogue.
    pub fn all() -> Self {
        Permission::all().collect()
    }

    /// Every model permission of `kind` (view, add, change, delete).
    pub fn crud(kind: ResourceKind) -> Self {
        Self::of(kind, &Action::ALL)
    }

    /// The permissions for `actions` on `kind`.
    pub fn of(kind: ResourceKind, actions: &[Action]) -> Self {
        actions.iter().map(|a| Permission::new(kind, *a)).collect()
    }

    /// Adds `p`; returns whether it was absent.
    pub fn insert(&mut self, p: Permission) -> bool {
        let (w, b) = Self::pos(p);
        let absent = self.0[w] & b == 0;
        self.0[w] |= b;
        absent
    }

    /// Removes `p`; returns whether it was present.
    pub fn remove(&mut self, p: Permission) -> bool {
        let (w, b) = Self::pos(p);
        let present = self.0[w] & b != 0;
        self.0[w] &= !b;
        present
    }

    /// Whether `p` is in the set.
    pub fn contains(&self, p: Permission) -> bool {
        let (w, b) = Self::pos(p);
        self.0[w] & b != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Number of permissions in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Permissions in either set.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let mut out = *self;
        out.0.iter_mut().zip(other.0).for_each(|(a, b)| *a |= b);
        out
    }

    /// Permissions in both sets.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        let mut out = *self;
        out.0.iter_mut().zip(other.0).for_each(|(a, b)| *a &= b);
        out
    }

    /// Permissions in `self` but not in `other`.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = *self;
        out.0.iter_mut().zip(other.0).for_each(|(a, b)| *a &= !b);
        out
    }

    /// Whether every permission of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.difference(other).is_empty()
    }

    /// The permissions, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::all().filter(|p| self.contains(*p))
    }

    /// The codenames, in catalogue order.
    pub fn codenames(&self) -> Vec<&'static str> {
        self.iter().map(Permission::codename).collect()
    }

    fn pos(p: Permission) -> (usize, u64) {
        (usize::from(p.0 / 64), 1u64 << (p.0 % 64))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

impl Extend<Permission> for PermissionSet {
    fn extend<I: IntoIterator<Item = Permission>>(&mut self, iter: I) {
        for p in iter {
            self.insert(p);
        }
    }
}

impl<'a> IntoIterator for &'a PermissionSet {
    type Item = Permission;
    type IntoIter = Box<dyn Iterator<Item = Permission> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_model_action_and_four_extras() {
        assert_eq!(ResourceKind::ALL.len(), 32);
        assert_eq!(Permission::COUNT, 132);
        assert_eq!(Permission::all().count(), 132);
    }

    #[test]
    fn codenames_follow_action_underscore_model_in_catalogue_order() {
        for (i, kind) in ResourceKind::ALL.iter().enumerate() {
            for (j, action) in Action::ALL.iter().enumerate() {
                let p = Permission::new(*kind, *action);
                assert_eq!(usize::from(p.id()), i * 4 + j);
                assert_eq!(p.codename(), format!("{}_{}", action.verb(), kind.model()));
                assert_eq!(p.model_action(), Some((*kind, *action)));
            }
        }
    }

    #[test]
    fn human_names_and_content_types_read_like_django() {
        let p = Permission::new(ResourceKind::Client, Action::View);
        assert_eq!(p.name(), "Can view client");
        assert_eq!(p.content_type(), "immigration.client");
        assert_eq!(p.qualified(), "immigration.view_client");
        assert_eq!(Permission::CHANGE_GROUP.content_type(), "auth.group");
        assert_eq!(Permission::CHANGE_GROUP.qualified(), "auth.change_group");
        assert_eq!(Permission::VIEW_TEAM_EVENTS.app_label(), "immigration");
        assert_eq!(Permission::VIEW_GROUP.name(), "Can view group");
    }

    #[test]
    fn every_codename_round_trips_through_from_codename() {
        for p in Permission::all() {
            assert_eq!(Permission::from_codename(p.codename()), Some(p));
            assert_eq!(Permission::from_codename(&p.qualified()), Some(p));
            assert_eq!(Permission::from_id(p.id()), Some(p));
        }
    }

    #[test]
    fn unknown_codenames_and_wrong_app_labels_are_refused() {
        assert_eq!(Permission::from_codename("view_event"), None);
        assert_eq!(Permission::from_codename("auth.view_client"), None);
        assert_eq!(Permission::from_codename("immigration.view_group"), None);
        assert_eq!(Permission::from_id(132), None);
        assert!("fly_client".parse::<Permission>().is_err());
    }

    #[test]
    fn a_permission_set_behaves_like_a_set() {
        let view = Permission::new(ResourceKind::Client, Action::View);
        let mut set = PermissionSet::new();
        assert!(set.is_empty());
        assert!(set.insert(view));
        assert!(!set.insert(view));
        assert!(set.insert(Permission::CHANGE_GROUP));
        assert_eq!(set.len(), 2);
        assert!(set.contains(view));
        assert!(set.is_subset(&PermissionSet::all()));
        assert!(!PermissionSet::all().is_subset(&set));
        assert_eq!(set.codenames(), vec!["view_client", "change_group"]);
        assert!(set.remove(view));
        assert!(!set.contains(view));
        let crud = PermissionSet::crud(ResourceKind::Task);
        assert_eq!(crud.len(), 4);
        assert_eq!(crud.union(&set).len(), 5);
        assert_eq!(crud.intersection(&set).len(), 0);
        assert_eq!(PermissionSet::all().difference(&crud).len(), 128);
    }
}
