//! The permission matrix, through HTTP against PostgreSQL: every built-in role × users, groups,
//! permissions, regions, branches, clients, notes, tasks, reminders, calendar events × list,
//! retrieve, create, update, delete, with the expected outcome and scope written down as a
//! table.
//!
//! Client-owned rows (notes, reminders, tasks linked to a client, profile sections) follow the
//! client's branch; calendar events are the actor's own (inside) plus, with `view_team_events`,
//! their team's; language exams and agents are tenant-wide master data written by admins only
//! (agents are not even readable by Region Managers and Consultants, as in the original); visa
//! applications follow their client's branch. Institute children and the course taxonomy are
//! read by every role and written by Super and Branch Admins; application types and college
//! applications (which follow their client's branch) belong to Super and Branch Admins only,
//! as in the original.
//!
//! The organisation: regions North (branches A, B) and South (branch C), branch D without a
//! region. The actors: a Super Admin, a Region Manager of North, a Branch Admin of A and a
//! Consultant of A. Every write acts on a fresh target, so the rows do not interfere.

use crate::common;

use std::collections::BTreeSet;

use common::{Org, TestApp, PASSWORD};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";
/// Every permission of the catalogue: 32 models × 4 actions + 4 extras.
const CATALOGUE: usize = 132;
const ROLES: [Role; 4] = [
    Role::SuperAdmin,
    Role::RegionManager,
    Role::BranchAdmin,
    Role::Consultant,
];

/// The identity resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Users,
    Groups,
    Permissions,
    Regions,
    Branches,
    Clients,
    Notes,
    Tasks,
    Reminders,
    Events,
    Exams,
    Proficiencies,
    Qualifications,
    Employments,
    Agents,
    VisaApplications,
    Institutes,
    InstituteLocations,
    InstituteIntakes,
    ContactPersons,
    Requirements,
    CourseLevels,
    BroadFields,
    NarrowFields,
    Courses,
    ApplicationTypes,
    CollegeApplications,
}

/// Every resource of the matrix.
const RESOURCES: [Res; 27] = [
    Res::Users,
    Res::Groups,
    Res::Permissions,
    Res::Regions,
    Res::Branches,
    Res::Clients,
    Res::Notes,
    Res::Tasks,
    Res::Reminders,
    Res::Events,
    Res::Exams,
    Res::Proficiencies,
    Res::Qualifications,
    Res::Employments,
    Res::Agents,
    Res::VisaApplications,
    Res::Institutes,
    Res::InstituteLocations,
    Res::InstituteIntakes,
    Res::ContactPersons,
    Res::Requirements,
    Res::CourseLevels,
    Res::BroadFields,
    Res::NarrowFields,
    Res::Courses,
    Res::ApplicationTypes,
    Res::CollegeApplications,
];

/// What a list must return.
#[derive(Debug, Clone)]
enum List {
    /// 403.
    Forbidden,
    /// Exactly these rows (by name; usernames for users).
    Exactly(&'static [&'static str]),
    /// This many rows.
    Count(usize),
}

/// What a single-row action must answer on a row inside / outside the actor's scope.
#[derive(Debug, Clone, Copy)]
struct Row {
    inside: u16,
    outside: u16,
}

const fn row(inside: u16, outside: u16) -> Row {
    Row { inside, outside }
}

/// The same status whatever the row.
const fn all(status: u16) -> Row {
    Row {
        inside: status,
        outside: status,
    }
}

/// One line of the matrix.
#[derive(Debug, Clone)]
struct Expect {
    res: Res,
    role: Role,
    list: List,
    retrieve: Row,
    /// Creating inside / outside the actor's scope (for users and branches: in branch A or C /
    /// region North or South; otherwise both the same).
    create: Row,
    update: Row,
    delete: Row,
}

/// The expected matrix (spec README §2: verb-level permissions, out of scope is 404; role
/// permissions of `original-backend.md` §4.2; scopes of the policy engine).
fn matrix() -> Vec<Expect> {
    use Res::*;
    use Role::*;
    let e = |res, role, list, retrieve, create, update, delete| Expect {
        res,
        role,
        list,
        retrieve,
        create,
        update,
        delete,
    };
    let all_users: &[&str] = &["bob_a", "cora_a", "cy_c", "rita_n", "sam_sa"];
    let mut lines = vec![
        // Users: own or sharing a branch in scope; Super Admin tenant-wide.
        e(
            Users,
            SuperAdmin,
            List::Exactly(all_users),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            Users,
            RegionManager,
            List::Exactly(&["bob_a", "cora_a", "rita_n"]),
            row(200, 404),
            all(403),
            row(200, 404),
            all(403),
        ),
        e(
            Users,
            BranchAdmin,
            List::Exactly(&["bob_a", "cora_a"]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            row(204, 404),
        ),
        e(
            Users,
            Consultant,
            List::Exactly(&["bob_a", "cora_a"]),
            row(200, 404),
            all(403),
            all(403),
            all(403),
        ),
        // Groups: view_group to read, change_group to write; not row-scoped.
        e(
            Groups,
            SuperAdmin,
            List::Count(4),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            Groups,
            RegionManager,
            List::Forbidden,
            all(403),
            all(403),
            all(403),
            all(403),
        ),
        e(
            Groups,
            BranchAdmin,
            List::Count(4),
            all(200),
            all(403),
            all(403),
            all(403),
        ),
        e(
            Groups,
            Consultant,
            List::Forbidden,
            all(403),
            all(403),
            all(403),
            all(403),
        ),
        // Permissions: read-only catalogue for everyone.
        e(
            Permissions,
            SuperAdmin,
            List::Count(CATALOGUE),
            all(200),
            all(405),
            all(405),
            all(405),
        ),
        e(
            Permissions,
            RegionManager,
            List::Count(CATALOGUE),
            all(200),
            all(405),
            all(405),
            all(405),
        ),
        e(
            Permissions,
            BranchAdmin,
            List::Count(CATALOGUE),
            all(200),
            all(405),
            all(405),
            all(405),
        ),
        e(
            Permissions,
            Consultant,
            List::Count(CATALOGUE),
            all(200),
            all(405),
            all(405),
            all(405),
        ),
        // Regions: a region manager views its regions, a branch admin the regions of its
        // branches; writes need tenant scope.
        e(
            Regions,
            SuperAdmin,
            List::Exactly(&["North", "South"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            Regions,
            RegionManager,
            List::Exactly(&["North"]),
            row(200, 404),
            all(403),
            all(403),
            all(403),
        ),
        e(
            Regions,
            BranchAdmin,
            List::Exactly(&["North"]),
            row(200, 404),
            all(403),
            all(404),
            all(404),
        ),
        e(
            Regions,
            Consultant,
            List::Forbidden,
            all(403),
            all(403),
            all(403),
            all(403),
        ),
        // Branches: by the branch's own id within the scope.
        e(
            Branches,
            SuperAdmin,
            List::Exactly(&["Branch A", "Branch B", "Branch C", "Branch D"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            Branches,
            RegionManager,
            List::Exactly(&["Branch A", "Branch B"]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            all(403),
        ),
        e(
            Branches,
            BranchAdmin,
            List::Exactly(&["Branch A"]),
            row(200, 404),
            all(403),
            all(403),
            all(403),
        ),
        e(
            Branches,
            Consultant,
            List::Forbidden,
            all(403),
            all(403),
            all(403),
            all(403),
        ),
        // Clients: by the client's branch (a consultant sees every client of its branches).
        e(
            Clients,
            SuperAdmin,
            List::Exactly(&["Client A", "Client B", "Client C", "Client D"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            Clients,
            RegionManager,
            List::Exactly(&["Client A", "Client B"]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            row(204, 404),
        ),
        e(
            Clients,
            BranchAdmin,
            List::Exactly(&["Client A"]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            row(204, 404),
        ),
        e(
            Clients,
            Consultant,
            List::Exactly(&["Client A"]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            all(403),
        ),
    ];
    // Notes, tasks and reminders of clients A–D follow the client's branch. Creating one for a
    // client out of scope is the 400 of an unknown client (existence is not leaked).
    for (res, prefix) in [(Notes, "Note"), (Tasks, "Task"), (Reminders, "Reminder")] {
        let names = |branches: &'static [&'static str]| -> &'static [&'static str] {
            match (prefix, branches.len()) {
                ("Note", 4) => &["Note A", "Note B", "Note C", "Note D"],
                ("Note", 2) => &["Note A", "Note B"],
                ("Note", _) => &["Note A"],
                ("Task", 4) => &["Task A", "Task B", "Task C", "Task D"],
                ("Task", 2) => &["Task A", "Task B"],
                ("Task", _) => &["Task A"],
                (_, 4) => &["Reminder A", "Reminder B", "Reminder C", "Reminder D"],
                (_, 2) => &["Reminder A", "Reminder B"],
                _ => &["Reminder A"],
            }
        };
        // Consultants hold neither delete_note nor delete_task (they delete only what they
        // wrote or created); everyone holds delete_reminder.
        let consultant_delete = if res == Reminders {
            row(204, 404)
        } else {
            row(403, 404)
        };
        lines.extend([
            e(
                res,
                SuperAdmin,
                List::Exactly(names(&["A", "B", "C", "D"])),
                all(200),
                all(201),
                all(200),
                all(204),
            ),
            e(
                res,
                RegionManager,
                List::Exactly(names(&["A", "B"])),
                row(200, 404),
                row(201, 400),
                row(200, 404),
                row(204, 404),
            ),
            e(
                res,
                BranchAdmin,
                List::Exactly(names(&["A"])),
                row(200, 404),
                row(201, 400),
                row(200, 404),
                row(204, 404),
            ),
            e(
                res,
                Consultant,
                List::Exactly(names(&["A"])),
                row(200, 404),
                row(201, 400),
                row(200, 404),
                consultant_delete,
            ),
        ]);
    }
    // Calendar events: inside = assigned to the actor; outside = an unassigned event of branch
    // C. Team events (view_team_events) reach the Super Admin (all) and the Branch Admin (its
    // branch); assigning a branch outside one's scope is a 403.
    lines.extend([
        e(
            Events,
            SuperAdmin,
            List::Exactly(&["Event A", "Event B", "Event C", "Event D"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            Events,
            RegionManager,
            List::Exactly(&[]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            row(204, 404),
        ),
        e(
            Events,
            BranchAdmin,
            List::Exactly(&["Event A"]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            row(204, 404),
        ),
        e(
            Events,
            Consultant,
            List::Exactly(&[]),
            row(200, 404),
            row(201, 403),
            row(200, 404),
            row(204, 404),
        ),
    ]);
    // Language exams: master data, readable by all, written by Super and Branch Admins.
    let exams: &[&str] = &["Exam A", "Exam B", "Exam C", "Exam D"];
    for role in [SuperAdmin, BranchAdmin] {
        lines.push(e(
            Exams,
            role,
            List::Exactly(exams),
            all(200),
            all(201),
            all(200),
            all(204),
        ));
    }
    for role in [RegionManager, Consultant] {
        lines.push(e(
            Exams,
            role,
            List::Exactly(exams),
            all(200),
            all(403),
            all(403),
            all(403),
        ));
    }
    // Profile sections follow the client's branch; every role holds all four verbs.
    for (res, names) in [
        (Proficiencies, ["Exam A", "Exam B", "Exam C", "Exam D"]),
        (
            Qualifications,
            ["Course A", "Course B", "Course C", "Course D"],
        ),
        (
            Employments,
            ["Employer A", "Employer B", "Employer C", "Employer D"],
        ),
    ] {
        let names: &'static [&'static str; 4] = Box::leak(Box::new(names));
        lines.extend([
            e(
                res,
                SuperAdmin,
                List::Exactly(&names[..]),
                all(200),
                all(201),
                all(200),
                all(204),
            ),
            e(
                res,
                RegionManager,
                List::Exactly(&names[..2]),
                row(200, 404),
                row(201, 400),
                row(200, 404),
                row(204, 404),
            ),
            e(
                res,
                BranchAdmin,
                List::Exactly(&names[..1]),
                row(200, 404),
                row(201, 400),
                row(200, 404),
                row(204, 404),
            ),
            e(
                res,
                Consultant,
                List::Exactly(&names[..1]),
                row(200, 404),
                row(201, 400),
                row(200, 404),
                row(204, 404),
            ),
        ]);
    }
    // Agents: master data behind view_agent (Super and Branch Admins only).
    let agents: &[&str] = &["Agent A", "Agent B"];
    for role in [SuperAdmin, BranchAdmin] {
        lines.push(e(
            Agents,
            role,
            List::Exactly(agents),
            all(200),
            all(201),
            all(200),
            all(204),
        ));
    }
    for role in [RegionManager, Consultant] {
        lines.push(e(
            Agents,
            role,
            List::Forbidden,
            all(403),
            all(403),
            all(403),
            all(403),
        ));
    }
    // Visa applications follow the client's branch; creating one for a client out of scope
    // answers like a missing client (404). Consultants cannot delete.
    lines.extend([
        e(
            VisaApplications,
            SuperAdmin,
            List::Exactly(&["Visa A", "Visa B", "Visa C", "Visa D"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            VisaApplications,
            RegionManager,
            List::Exactly(&["Visa A", "Visa B"]),
            row(200, 404),
            row(201, 404),
            row(200, 404),
            row(204, 404),
        ),
        e(
            VisaApplications,
            BranchAdmin,
            List::Exactly(&["Visa A"]),
            row(200, 404),
            row(201, 404),
            row(200, 404),
            row(204, 404),
        ),
        e(
            VisaApplications,
            Consultant,
            List::Exactly(&["Visa A"]),
            row(200, 404),
            row(201, 404),
            row(200, 404),
            all(403),
        ),
    ]);
    // Institutes: master data everyone reads; written by holders of the institute
    // permissions (Super Admin, Branch Admin, Region Manager), not by Consultants.
    let institutes: &[&str] = &["Institute A", "Institute B"];
    for role in [SuperAdmin, RegionManager, BranchAdmin] {
        lines.push(e(
            Institutes,
            role,
            List::Exactly(institutes),
            all(200),
            all(201),
            all(200),
            all(204),
        ));
    }
    lines.push(e(
        Institutes,
        Consultant,
        List::Exactly(institutes),
        all(200),
        all(403),
        all(403),
        all(403),
    ));
    // Institute children and the course taxonomy: read with their own view permission or
    // `view_institute` (every role), written with their own permissions only (Super and Branch
    // Admins; the Region Manager's institute permissions do not extend to them).
    let children: [(Res, &'static [&'static str]); 8] = [
        (InstituteLocations, &["Fixture State"]),
        (InstituteIntakes, &["Fixture intake"]),
        (ContactPersons, &["Fixture Contact"]),
        (Requirements, &["Fixture Requirement"]),
        (CourseLevels, &["Fixture Level"]),
        (BroadFields, &["Fixture Broad"]),
        (NarrowFields, &["Fixture Narrow"]),
        (Courses, &["Fixture Course"]),
    ];
    for (res, rows) in children {
        for role in [SuperAdmin, BranchAdmin] {
            lines.push(e(
                res,
                role,
                List::Exactly(rows),
                all(200),
                all(201),
                all(200),
                all(204),
            ));
        }
        for role in [RegionManager, Consultant] {
            lines.push(e(
                res,
                role,
                List::Exactly(rows),
                all(200),
                all(403),
                all(403),
                all(403),
            ));
        }
    }
    // Application types and college applications: only the Super and Branch Admins hold their
    // permissions (as in the original); applications follow the client's branch.
    for role in [SuperAdmin, BranchAdmin] {
        lines.push(e(
            ApplicationTypes,
            role,
            List::Exactly(&["Fixture Type"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ));
    }
    lines.extend([
        e(
            CollegeApplications,
            SuperAdmin,
            List::Exactly(&["College A", "College B", "College C", "College D"]),
            all(200),
            all(201),
            all(200),
            all(204),
        ),
        e(
            CollegeApplications,
            BranchAdmin,
            List::Exactly(&["College A"]),
            row(200, 404),
            row(201, 404),
            row(200, 404),
            row(204, 404),
        ),
    ]);
    for res in [ApplicationTypes, CollegeApplications] {
        for role in [RegionManager, Consultant] {
            lines.push(e(
                res,
                role,
                List::Forbidden,
                all(403),
                all(403),
                all(403),
                all(403),
            ));
        }
    }
    lines
}

/// The fixture institute ("Institute A") with its course, campus and intake, the taxonomy, and
/// the application type with its one stage.
#[derive(Debug, Clone, Copy)]
struct Study {
    institute: i64,
    level: i64,
    broad: i64,
    narrow: i64,
    course: i64,
    location: i64,
    intake: i64,
    app_type: i64,
    stage: i64,
}

struct World {
    app: TestApp,
    org: Org,
    /// The fixture clients of branches A, B, C, D.
    clients: [i64; 4],
    /// The language exam of the results the matrix creates.
    exam: i64,
    /// The visa type of the applications the matrix creates.
    visa_type: i64,
    /// The fixture institute, course taxonomy and application type the matrix builds on.
    study: Study,
    /// The actors: role, user id, token.
    actors: Vec<(Role, i64)>,
    tokens: Vec<(Role, String)>,
    serial: std::sync::atomic::AtomicUsize,
}

impl Study {
    /// Seeds the study-abroad fixtures: children of "Institute A" named "Fixture …", the
    /// taxonomy, a course, an application type with one stage, and one college application per
    /// fixture client ("College A" … "College D", by student id).
    async fn seed(conn: &mut sqlx::PgConnection, clients: &[i64; 4]) -> Self {
        async fn id(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
            sqlx::query_scalar(sql)
                .fetch_one(conn)
                .await
                .expect("study fixture")
        }
        let institute = id(conn, "SELECT id FROM institutes WHERE name = 'Institute A'").await;
        let location = id(
            conn,
            &format!(
                "INSERT INTO institute_locations (institute_id, state, country)
             VALUES ({institute}, 'Fixture State', 'AU') RETURNING id"
            ),
        )
        .await;
        let intake = id(
            conn,
            &format!(
                "INSERT INTO institute_intakes (institute_id, intake_date, description)
             VALUES ({institute}, '2031-02-01', 'Fixture intake') RETURNING id"
            ),
        )
        .await;
        id(
            conn,
            &format!(
                "INSERT INTO institute_contact_persons (institute_id, name)
             VALUES ({institute}, 'Fixture Contact') RETURNING id"
            ),
        )
        .await;
        id(
            conn,
            &format!(
                "INSERT INTO institute_requirements (institute_id, title)
             VALUES ({institute}, 'Fixture Requirement') RETURNING id"
            ),
        )
        .await;
        let level = id(
            conn,
            "INSERT INTO course_levels (name) VALUES ('Fixture Level') RETURNING id",
        )
        .await;
        let broad = id(
            conn,
            "INSERT INTO broad_fields (name) VALUES ('Fixture Broad') RETURNING id",
        )
        .await;
        let narrow = id(
            conn,
            &format!(
                "INSERT INTO narrow_fields (name, broad_field_id)
             VALUES ('Fixture Narrow', {broad}) RETURNING id"
            ),
        )
        .await;
        let course = id(
            conn,
            &format!(
            "INSERT INTO courses (institute_id, name, level_id, broad_field_id, narrow_field_id,
                                  total_tuition_fee, coe_fee)
             VALUES ({institute}, 'Fixture Course', {level}, {broad}, {narrow}, 1000, 100)
             RETURNING id"
        ),
        )
        .await;
        let app_type = id(
            conn,
            "INSERT INTO application_types (title) VALUES ('Fixture Type') RETURNING id",
        )
        .await;
        let stage = id(
            conn,
            &format!(
                "INSERT INTO stages (application_type_id, stage_name, position)
             VALUES ({app_type}, 'Applied', 1) RETURNING id"
            ),
        )
        .await;
        let study = Self {
            institute,
            level,
            broad,
            narrow,
            course,
            location,
            intake,
            app_type,
            stage,
        };
        for (client, name) in clients.iter().zip(["A", "B", "C", "D"]) {
            id(
                conn,
                &study.application_sql(*client, &format!("College {name}")),
            )
            .await;
        }
        study
    }

    /// An `INSERT … RETURNING id` of a college application of `client` with `student_id`.
    fn application_sql(&self, client: i64, student_id: &str) -> String {
        format!(
            "INSERT INTO college_applications (application_type_id, stage_id, client_id,
                 institute_id, course_id, start_date_id, location_id, total_tuition_fee,
                 student_id)
             VALUES ({}, {}, {client}, {}, {}, {}, {}, 1000, '{student_id}') RETURNING id",
            self.app_type, self.stage, self.institute, self.course, self.intake, self.location
        )
    }
}

impl World {
    async fn new() -> Self {
        let app = TestApp::new(&[SLUG]).await;
        let org = app.seed_org(SLUG).await;
        let actors = vec![
            (
                Role::SuperAdmin,
                app.user(SLUG, "sam_sa", Some(Role::SuperAdmin), &[], &[])
                    .await,
            ),
            (
                Role::RegionManager,
                app.user(SLUG, "rita_n", Some(Role::RegionManager), &[], &[org.north])
                    .await,
            ),
            (
                Role::BranchAdmin,
                app.user(SLUG, "bob_a", Some(Role::BranchAdmin), &[org.a], &[])
                    .await,
            ),
            (
                Role::Consultant,
                app.user(SLUG, "cora_a", Some(Role::Consultant), &[org.a], &[])
                    .await,
            ),
        ];
        app.user(SLUG, "cy_c", Some(Role::Consultant), &[org.c], &[])
            .await;
        let mut tx = app.context(SLUG).begin().await.expect("tx");
        sqlx::query(
            "INSERT INTO visa_types (visa_category_id, name)
             SELECT min(id), 'Student (500)' FROM visa_categories",
        )
        .execute(&mut *tx)
        .await
        .expect("fixture visa type");
        let mut clients = [0; 4];
        for (i, (name, branch)) in [("A", org.a), ("B", org.b), ("C", org.c), ("D", org.d)]
            .into_iter()
            .enumerate()
        {
            clients[i] = sqlx::query_scalar(
                "INSERT INTO clients (first_name, last_name, country, branch_id)
                 VALUES ('Client', $1, 'AU', $2) RETURNING id",
            )
            .bind(name)
            .bind(branch)
            .fetch_one(&mut *tx)
            .await
            .expect("fixture client");
            // One note, task, reminder of the client, and one unassigned event of the branch,
            // none of them the actors' own.
            sqlx::query(
                "INSERT INTO notes (client_id, content) VALUES ($1, 'Note ' || $2);
                 ",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture note");
            sqlx::query(
                "INSERT INTO tasks (title, detail, due_date, content_type_id, object_id)
                 VALUES ('Task ' || $2, 'fixture', now() + interval '1 day', 10, $1)",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture task");
            sqlx::query(
                "INSERT INTO reminders (content_type_id, object_id, title)
                 VALUES (10, $1, 'Reminder ' || $2)",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture reminder");
            sqlx::query(
                "INSERT INTO calendar_events (title, start_at, end_at, branch_id)
                 VALUES ('Event ' || $1, now(), now() + interval '1 hour', $2)",
            )
            .bind(name)
            .bind(branch)
            .execute(&mut *tx)
            .await
            .expect("fixture event");
            sqlx::query(
                "WITH exam AS (INSERT INTO language_exams (name) VALUES ('Exam ' || $2)
                               RETURNING id)
                 INSERT INTO proficiencies (client_id, test_name_id, overall_score, test_date)
                 SELECT $1, id, 7.0, current_date FROM exam",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture exam and result");
            sqlx::query(
                "INSERT INTO qualifications (client_id, course, country)
                 VALUES ($1, 'Course ' || $2, 'NP')",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture qualification");
            sqlx::query(
                "INSERT INTO employments (client_id, employer_name, position, start_date,
                                          end_date, country)
                 VALUES ($1, 'Employer ' || $2, 'Clerk', '2020-01-01', '2021-01-01', 'NP')",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture employment");
            sqlx::query(
                "INSERT INTO visa_applications (client_id, visa_type_id, immigration_fee,
                                                service_fee, transaction_reference_no)
                 SELECT $1, (SELECT min(id) FROM visa_types), 100, 50, 'Visa ' || $2",
            )
            .bind(clients[i])
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("fixture visa application");
        }
        sqlx::query(
            "INSERT INTO agents (agent_name) VALUES ('Agent A'), ('Agent B');
             ",
        )
        .execute(&mut *tx)
        .await
        .expect("fixture agents");
        sqlx::query(
            "INSERT INTO institutes (name, short_name)
             VALUES ('Institute A', 'IA'), ('Institute B', 'IB')",
        )
        .execute(&mut *tx)
        .await
        .expect("fixture institutes");
        let study = Study::seed(&mut tx, &clients).await;
        // The exam every created or target result uses (its name has a digit, so lists ignore
        // it like every other row the matrix creates).
        let exam: i64 =
            sqlx::query_scalar("INSERT INTO language_exams (name) VALUES ('Exam 0') RETURNING id")
                .fetch_one(&mut *tx)
                .await
                .expect("target exam");
        let visa_type: i64 = sqlx::query_scalar("SELECT min(id) FROM visa_types")
            .fetch_one(&mut *tx)
            .await
            .expect("visa type");
        tx.commit().await.expect("commit");
        let mut tokens = Vec::new();
        for (role, username) in [
            (Role::SuperAdmin, "sam_sa"),
            (Role::RegionManager, "rita_n"),
            (Role::BranchAdmin, "bob_a"),
            (Role::Consultant, "cora_a"),
        ] {
            tokens.push((role, app.token(SLUG, username).await));
        }
        Self {
            app,
            org,
            clients,
            exam,
            visa_type,
            study,
            actors,
            tokens,
            serial: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn token(&self, role: Role) -> &str {
        self.tokens
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, t)| t.as_str())
            .expect("an actor per role")
    }

    fn next(&self) -> usize {
        self.serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn sql_id(&self, sql: &str) -> i64 {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let id = sqlx::query_scalar(sql)
            .fetch_one(&mut *tx)
            .await
            .expect("fixture row");
        tx.commit().await.expect("commit");
        id
    }

    /// A fresh row of `res` inside (`true`) or outside the scope of `role`'s actor. A branch
    /// inside a branch admin's or consultant's scope can only be their own branch A (they may
    /// not write branches, so it is never changed); a region in the scope of anyone but a super
    /// admin is North, one outside it South.
    async fn target(&self, res: Res, inside: bool, role: Role) -> i64 {
        let n = self.next();
        match res {
            Res::Branches if inside && matches!(role, Role::BranchAdmin | Role::Consultant) => {
                self.org.a
            }
            Res::Users => {
                let branch = if inside { self.org.a } else { self.org.c };
                self.app
                    .user(
                        SLUG,
                        &format!("target_{n}"),
                        Some(Role::Consultant),
                        &[branch],
                        &[],
                    )
                    .await
            }
            Res::Groups => {
                self.sql_id(&format!(
                    "INSERT INTO groups (name) VALUES ('custom_{n}') RETURNING id"
                ))
                .await
            }
            Res::Permissions => 1,
            // Only a super admin may write regions; the others' targets are never changed.
            Res::Regions if role != Role::SuperAdmin => {
                if inside {
                    self.org.north
                } else {
                    self.org.south
                }
            }
            Res::Regions => {
                self.sql_id(&format!(
                    "INSERT INTO regions (name) VALUES ('Region {n}') RETURNING id"
                ))
                .await
            }
            Res::Branches => {
                let region = if inside {
                    self.org.north
                } else {
                    self.org.south
                };
                self.sql_id(&format!(
                    "INSERT INTO branches (name, region_id) VALUES ('Target {n}', {region}) RETURNING id"
                ))
                .await
            }
            Res::Clients => {
                let branch = if inside { self.org.a } else { self.org.c };
                self.sql_id(&format!(
                    "INSERT INTO clients (first_name, country, branch_id)
                     VALUES ('Target {n}', 'AU', {branch}) RETURNING id"
                ))
                .await
            }
            Res::Notes => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO notes (client_id, content) VALUES ({client}, 'Target {n}')
                     RETURNING id"
                ))
                .await
            }
            Res::Tasks => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO tasks (title, detail, due_date, content_type_id, object_id)
                     VALUES ('Target {n}', 'target', now() + interval '1 day', 10, {client})
                     RETURNING id"
                ))
                .await
            }
            Res::Reminders => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO reminders (content_type_id, object_id, title)
                     VALUES (10, {client}, 'Target {n}') RETURNING id"
                ))
                .await
            }
            Res::Events => {
                let (assignee, branch) = if inside {
                    (self.actor(role).to_string(), "NULL".to_owned())
                } else {
                    ("NULL".to_owned(), self.org.c.to_string())
                };
                self.sql_id(&format!(
                    "INSERT INTO calendar_events (title, start_at, end_at, assigned_to_id, branch_id)
                     VALUES ('Target {n}', now(), now() + interval '1 hour', {assignee}, {branch})
                     RETURNING id"
                ))
                .await
            }
            Res::Exams => {
                self.sql_id(&format!(
                    "INSERT INTO language_exams (name) VALUES ('Target {n}') RETURNING id"
                ))
                .await
            }
            Res::Proficiencies => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO proficiencies (client_id, test_name_id, overall_score, test_date)
                     VALUES ({client}, {}, 6.5, current_date) RETURNING id",
                    self.exam
                ))
                .await
            }
            Res::Qualifications => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO qualifications (client_id, course, country)
                     VALUES ({client}, 'Target {n}', 'NP') RETURNING id"
                ))
                .await
            }
            Res::Institutes => {
                self.sql_id(&format!(
                    "INSERT INTO institutes (name, short_name) VALUES ('Target {n}', 'T{n}')
                     RETURNING id"
                ))
                .await
            }
            Res::Agents => {
                self.sql_id(&format!(
                    "INSERT INTO agents (agent_name) VALUES ('Target {n}') RETURNING id"
                ))
                .await
            }
            Res::VisaApplications => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO visa_applications (client_id, visa_type_id, immigration_fee,
                                                    service_fee, transaction_reference_no)
                     SELECT {client}, min(id), 1, 1, 'Target {n}' FROM visa_types
                     RETURNING id"
                ))
                .await
            }
            Res::Employments => {
                let client = self.client(inside);
                self.sql_id(&format!(
                    "INSERT INTO employments (client_id, employer_name, position, start_date,
                                              end_date, country)
                     VALUES ({client}, 'Target {n}', 'Clerk', '2020-01-01', '2021-01-01', 'NP')
                     RETURNING id"
                ))
                .await
            }
            Res::InstituteLocations => {
                self.sql_id(&format!(
                    "INSERT INTO institute_locations (institute_id, state, country)
                     VALUES ({}, 'Target {n}', 'AU') RETURNING id",
                    self.study.institute
                ))
                .await
            }
            Res::InstituteIntakes => {
                self.sql_id(&format!(
                    "INSERT INTO institute_intakes (institute_id, intake_date, description)
                     VALUES ({}, '2031-07-01', 'Target {n}') RETURNING id",
                    self.study.institute
                ))
                .await
            }
            Res::ContactPersons => {
                self.sql_id(&format!(
                    "INSERT INTO institute_contact_persons (institute_id, name)
                     VALUES ({}, 'Target {n}') RETURNING id",
                    self.study.institute
                ))
                .await
            }
            Res::Requirements => {
                self.sql_id(&format!(
                    "INSERT INTO institute_requirements (institute_id, title)
                     VALUES ({}, 'Target {n}') RETURNING id",
                    self.study.institute
                ))
                .await
            }
            Res::CourseLevels => {
                self.sql_id(&format!(
                    "INSERT INTO course_levels (name) VALUES ('Target {n}') RETURNING id"
                ))
                .await
            }
            Res::BroadFields => {
                self.sql_id(&format!(
                    "INSERT INTO broad_fields (name) VALUES ('Target {n}') RETURNING id"
                ))
                .await
            }
            Res::NarrowFields => {
                self.sql_id(&format!(
                    "INSERT INTO narrow_fields (name, broad_field_id)
                     VALUES ('Target {n}', {}) RETURNING id",
                    self.study.broad
                ))
                .await
            }
            Res::Courses => {
                let s = self.study;
                self.sql_id(&format!(
                    "INSERT INTO courses (institute_id, name, level_id, broad_field_id,
                                          narrow_field_id, total_tuition_fee, coe_fee)
                     VALUES ({}, 'Target {n}', {}, {}, {}, 1000, 100) RETURNING id",
                    s.institute, s.level, s.broad, s.narrow
                ))
                .await
            }
            Res::ApplicationTypes => {
                self.sql_id(&format!(
                    "INSERT INTO application_types (title) VALUES ('Target {n}') RETURNING id"
                ))
                .await
            }
            Res::CollegeApplications => {
                let sql = self
                    .study
                    .application_sql(self.client(inside), &format!("Target {n}"));
                self.sql_id(&sql).await
            }
        }
    }

    /// The fixture client of branch A (inside every actor's scope) or C (outside all but the
    /// Super Admin's).
    fn client(&self, inside: bool) -> i64 {
        if inside {
            self.clients[0]
        } else {
            self.clients[2]
        }
    }

    /// The user id of `role`'s actor.
    fn actor(&self, role: Role) -> i64 {
        self.actors
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, id)| *id)
            .expect("an actor per role")
    }

    fn base(res: Res) -> &'static str {
        match res {
            Res::Users => "/api/v1/users/",
            Res::Groups => "/api/v1/groups/",
            Res::Permissions => "/api/v1/permissions/",
            Res::Regions => "/api/v1/regions/",
            Res::Branches => "/api/v1/branches/",
            Res::Clients => "/api/v1/clients/",
            Res::Notes => "/api/v1/notes/",
            Res::Tasks => "/api/v1/tasks/",
            Res::Reminders => "/api/v1/reminders/",
            Res::Events => "/api/v1/events/",
            Res::Exams => "/api/v1/language-exams/",
            Res::Proficiencies => "/api/v1/language-proficiencies/",
            Res::Qualifications => "/api/v1/qualifications/",
            Res::Employments => "/api/v1/employments/",
            Res::Agents => "/api/v1/agents/",
            Res::Institutes => "/api/v1/institutes/",
            Res::VisaApplications => "/api/v1/visa-applications/",
            Res::InstituteLocations => "/api/v1/institute-locations/",
            Res::InstituteIntakes => "/api/v1/institute-intakes/",
            Res::ContactPersons => "/api/v1/institute-contact-persons/",
            Res::Requirements => "/api/v1/institute-requirements/",
            Res::CourseLevels => "/api/v1/course-levels/",
            Res::BroadFields => "/api/v1/broad-fields/",
            Res::NarrowFields => "/api/v1/narrow-fields/",
            Res::Courses => "/api/v1/courses/",
            Res::ApplicationTypes => "/api/v1/application-types/",
            Res::CollegeApplications => "/api/v1/college-applications/",
        }
    }

    fn create_body(&self, res: Res, inside: bool) -> Value {
        let n = self.next();
        match res {
            Res::Users => json!({
                "username": format!("new_{n}"), "email": format!("new_{n}@example.com"),
                "password": PASSWORD, "first_name": "New", "last_name": "User",
                "group_name": "CONSULTANT",
                "branch_ids": [if inside { self.org.a } else { self.org.c }],
            }),
            Res::Groups => json!({"name": format!("created_{n}")}),
            Res::Permissions => json!({}),
            Res::Regions => json!({"name": format!("Created {n}")}),
            Res::Branches => json!({
                "name": format!("Created {n}"),
                "region_id": if inside { self.org.north } else { self.org.south },
            }),
            Res::Clients => json!({
                "first_name": format!("Created {n}"), "gender": "MALE", "country": "AU",
                "branch_id": if inside { self.org.a } else { self.org.c },
            }),
            Res::Notes => json!({"client": self.client(inside), "content": format!("Created {n}")}),
            Res::Tasks => json!({
                "title": format!("Created {n}"), "detail": "created",
                "due_date": "2031-01-01T09:00:00Z",
                "linked_entity_type": "client", "linked_entity_id": self.client(inside),
            }),
            Res::Reminders => json!({
                "title": format!("Created {n}"), "content_type": 10,
                "object_id": self.client(inside),
            }),
            Res::Events => json!({
                "title": format!("Created {n}"),
                "start": "2031-01-01T09:00:00Z", "end": "2031-01-01T10:00:00Z",
                "branch_id": if inside { self.org.a } else { self.org.c },
            }),
            Res::Exams => json!({"name": format!("Created {n}")}),
            Res::Proficiencies => json!({
                "client_id": self.client(inside), "test_name_id": self.exam,
                "overall_score": 7.0, "test_date": "2026-01-01",
            }),
            Res::Qualifications => json!({
                "client_id": self.client(inside), "course": format!("Created {n}"),
                "country": "NP",
            }),
            Res::Agents => json!({"agent_name": format!("Created {n}"), "agent_type": "SUB_AGENT"}),
            Res::Institutes => {
                json!({"name": format!("Created {n}"), "short_name": format!("C{n}")})
            }
            Res::VisaApplications => json!({
                "client_id": self.client(inside), "visa_type_id": self.visa_type,
                "immigration_fee": "100", "service_fee": 50,
                "transaction_reference_no": format!("Created {n}"),
            }),
            Res::Employments => json!({
                "client_id": self.client(inside), "employer_name": format!("Created {n}"),
                "position": "Clerk", "start_date": "2020-01-01", "end_date": "2021-01-01",
                "country": "NP",
            }),
            Res::InstituteLocations => json!({
                "institute": self.study.institute, "state": format!("Created {n}"),
                "country": "AU",
            }),
            Res::InstituteIntakes => json!({
                "institute": self.study.institute, "intake_date": "2031-09-01",
                "description": format!("Created {n}"),
            }),
            Res::ContactPersons => {
                json!({"institute": self.study.institute, "name": format!("Created {n}")})
            }
            Res::Requirements => {
                json!({"institute": self.study.institute, "title": format!("Created {n}")})
            }
            Res::CourseLevels | Res::BroadFields => json!({"name": format!("Created {n}")}),
            Res::NarrowFields => {
                json!({"name": format!("Created {n}"), "broad_field": self.study.broad})
            }
            Res::Courses => json!({
                "institute": self.study.institute, "name": format!("Created {n}"),
                "level": self.study.level, "broad_field": self.study.broad,
                "narrow_field": self.study.narrow, "total_tuition_fee": "1000",
                "coe_fee": "100",
            }),
            Res::ApplicationTypes => json!({"title": format!("Created {n}")}),
            Res::CollegeApplications => json!({
                "application_type_id": self.study.app_type, "client_id": self.client(inside),
                "institute_id": self.study.institute, "course_id": self.study.course,
                "location_id": self.study.location, "start_date_id": self.study.intake,
                "total_tuition_fee": "1000", "student_id": format!("Created {n}"),
            }),
        }
    }

    fn update_body(&self, res: Res) -> Value {
        match res {
            Res::Users => json!({"first_name": "Changed"}),
            Res::Groups => json!({"permission_ids": []}),
            Res::Regions => json!({"description": "changed"}),
            Res::Branches => json!({"phone": "123"}),
            Res::Clients => json!({"description": "changed"}),
            Res::Permissions => json!({}),
            Res::Notes => json!({"content": "Changed 1"}),
            Res::Tasks => json!({"detail": "changed"}),
            Res::Reminders => json!({"title": "Changed 1"}),
            Res::Events => json!({"description": "changed"}),
            Res::Exams => json!({"description": "changed"}),
            Res::Proficiencies => json!({"overall_score": 6.0}),
            Res::Qualifications => json!({"institute": "Changed"}),
            Res::Employments => json!({"position": "Changed"}),
            Res::Agents => json!({"description": "changed"}),
            Res::Institutes => json!({"phone": "0299990000"}),
            Res::VisaApplications | Res::CollegeApplications => json!({"notes": "changed"}),
            Res::InstituteLocations => json!({"postcode": "2000"}),
            // A digit keeps the changed intake out of the fixture comparison.
            Res::InstituteIntakes => json!({"description": "Changed 1"}),
            Res::Requirements | Res::Courses | Res::ApplicationTypes => {
                json!({"description": "changed"})
            }
            Res::ContactPersons => json!({"position": "Changed"}),
            Res::CourseLevels | Res::BroadFields | Res::NarrowFields => {
                json!({"name": format!("Changed {}", self.next())})
            }
        }
    }

    async fn status(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> u16 {
        let (status, _, reply) = self
            .app
            .call(method.clone(), SLUG, path, Some(self.token(role)), body)
            .await;
        assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR,
            "{role:?} {method} {path}: {reply}"
        );
        status.as_u16()
    }
}

fn names(res: Res, page: &Value) -> BTreeSet<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| match res {
            Res::Users => r["username"].as_str().expect("username").to_owned(),
            Res::Notes => r["content"].as_str().expect("content").to_owned(),
            Res::Tasks | Res::Reminders | Res::Events => {
                r["title"].as_str().expect("title").to_owned()
            }
            Res::Proficiencies => r["test_name_display"]
                .as_str()
                .expect("exam name")
                .to_owned(),
            Res::Qualifications => r["course"].as_str().expect("course").to_owned(),
            Res::Employments => r["employer_name"].as_str().expect("employer").to_owned(),
            Res::Agents => r["agent_name"].as_str().expect("agent name").to_owned(),
            Res::InstituteLocations => r["state"].as_str().expect("state").to_owned(),
            Res::InstituteIntakes => r["description"].as_str().expect("description").to_owned(),
            Res::Requirements | Res::ApplicationTypes => {
                r["title"].as_str().expect("title").to_owned()
            }
            Res::CollegeApplications => r["student_id"].as_str().expect("student id").to_owned(),
            Res::VisaApplications => r["transaction_reference_no"]
                .as_str()
                .expect("reference")
                .to_owned(),
            Res::Clients => format!(
                "{} {}",
                r["first_name"].as_str().expect("first name"),
                r["last_name"].as_str().expect("last name")
            )
            .trim()
            .to_owned(),
            _ => r["name"].as_str().expect("name").to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn every_role_gets_exactly_the_access_the_matrix_says_on_every_resource() {
    let world = World::new().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for expect in matrix() {
        let Expect { res, role, .. } = expect;
        let base = World::base(res);
        let label = |what: &str| format!("{role:?} × {res:?} × {what}");

        // List (page size 1000, so the count is the scope).
        let (status, _, page) = world
            .app
            .get(SLUG, &format!("{base}?page_size=1000"), world.token(role))
            .await;
        cells += 1;
        match &expect.list {
            List::Forbidden => {
                if status != StatusCode::FORBIDDEN {
                    failures.push(format!("{}: {status} {page}", label("list")));
                }
            }
            List::Exactly(expected) => {
                let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
                // Rows created by earlier lines of the matrix are ignored: only the fixture
                // rows (names without digits) are compared.
                let got: BTreeSet<String> = if status == StatusCode::OK {
                    names(res, &page)
                        .into_iter()
                        .filter(|n| !n.chars().any(|c| c.is_ascii_digit()))
                        .collect()
                } else {
                    BTreeSet::new()
                };
                if status != StatusCode::OK || got != expected {
                    failures.push(format!(
                        "{}: {status} {got:?} != {expected:?}",
                        label("list")
                    ));
                }
            }
            List::Count(n) => {
                let got = if res == Res::Groups {
                    // Only the four built-in groups: later lines add custom ones.
                    page["results"].as_array().map_or(0, |r| {
                        r.iter()
                            .filter(|g| {
                                g["name"].as_str().and_then(Role::from_group_name).is_some()
                            })
                            .count()
                    })
                } else {
                    page["count"].as_u64().map_or(0, |c| c as usize)
                };
                if status != StatusCode::OK || got != *n {
                    failures.push(format!("{}: {status} count {got} != {n}", label("list")));
                }
            }
        }

        for (inside, wanted) in [
            (true, expect.retrieve.inside),
            (false, expect.retrieve.outside),
        ] {
            let id = world.target(res, inside, role).await;
            let got = world
                .status(role, Method::GET, &format!("{base}{id}/"), None)
                .await;
            cells += 1;
            if got != wanted {
                failures.push(format!(
                    "{} (inside {inside}): {got} != {wanted}",
                    label("retrieve")
                ));
            }
        }
        for (inside, wanted) in [(true, expect.create.inside), (false, expect.create.outside)] {
            let body = world.create_body(res, inside);
            let got = world.status(role, Method::POST, base, Some(body)).await;
            cells += 1;
            if got != wanted {
                failures.push(format!(
                    "{} (inside {inside}): {got} != {wanted}",
                    label("create")
                ));
            }
        }
        for (inside, wanted) in [(true, expect.update.inside), (false, expect.update.outside)] {
            let id = world.target(res, inside, role).await;
            let got = world
                .status(
                    role,
                    Method::PATCH,
                    &format!("{base}{id}/"),
                    Some(world.update_body(res)),
                )
                .await;
            cells += 1;
            if got != wanted {
                failures.push(format!(
                    "{} (inside {inside}): {got} != {wanted}",
                    label("update")
                ));
            }
        }
        for (inside, wanted) in [(true, expect.delete.inside), (false, expect.delete.outside)] {
            let id = world.target(res, inside, role).await;
            let got = world
                .status(role, Method::DELETE, &format!("{base}{id}/"), None)
                .await;
            cells += 1;
            if got != wanted {
                failures.push(format!(
                    "{} (inside {inside}): {got} != {wanted}",
                    label("delete")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        cells,
        RESOURCES.len() * ROLES.len() * 9,
        "resources × roles × (list + 2 × 4 row actions)"
    );
    for res in RESOURCES {
        for role in ROLES {
            let lines = matrix()
                .iter()
                .filter(|e| e.res == res && e.role == role)
                .count();
            assert_eq!(lines, 1, "{role:?} × {res:?} has exactly one line");
        }
    }
    assert_eq!(leopard_rbac::Permission::all().count(), CATALOGUE);
}
