//! Administration (by permission): users — list with search, role and status filters, create
//! with a role, branches and regions under the hierarchy rules, deactivate — and the lists of
//! branches and regions; groups and their permissions (create, rename, grant by checkbox,
//! delete; the built-in role groups keep their names). Each is the API's operation from [`crate::api::identity`]: the
//! hierarchy (which roles, branches and regions an actor may grant) is enforced there, and the
//! form offers only the roles `leopard_rbac::grantable_roles` allows.

use axum::extract::{Path, Query as AxumQuery, RawQuery, State};
use axum::http::Uri;
use axum::response::Response;
use axum::Json;
use leopard_http::{ApiError, JsonBody};
use leopard_rbac::{grantable_roles, Action, ResourceKind};
use maud::html;
use serde_json::{Map, Value};

use super::widgets::{
    action_button, chip, csrf_field, day, input, may, page, pager, select, FormErrors, Query,
};
use super::{error_page, session::see_other, WebForm, WebUser};
use crate::api::identity::{branches, groups, permissions, regions, users};
use crate::app::AppState;

/// `GET /admin/users/`.
pub(crate) async fn users_list(user: WebUser, uri: Uri, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let Ok(filters) = AxumQuery::<users::UserFilters>::try_from_uri(&uri) else {
        return error_page(
            &ApiError::BadRequest("Invalid filters.".into()),
            Some(&user),
        );
    };
    let rows = match users::list(
        user.auth.clone(),
        query.pagination("/admin/users/"),
        filters,
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let principal = &user.auth.principal;
    let body = html! {
        div.toolbar {
            h1.grow { "Users" }
            @if may(principal, Action::Add, ResourceKind::User) {
                a.button.primary href="/admin/users/new/" { "New user" }
            }
        }
        form.toolbar method="get" action="/admin/users/" aria-label="Filter users" {
            label.sr-only for="f-search" { "Search" }
            input #f-search type="search" name="search" placeholder="Name, username, e-mail" value=(query.get("search").unwrap_or(""));
            label.sr-only for="f-role" { "Role" }
            select #f-role name="role" data-autosubmit {
                option value="" { "Any role" }
                @for role in leopard_rbac::Role::ALL {
                    option value=(role.group_name()) selected[query.get("role") == Some(role.group_name())] { (role.display_name()) }
                }
            }
            label.sr-only for="f-active" { "Status" }
            select #f-active name="is_active" data-autosubmit {
                option value="" { "Active" }
                option value="false" selected[query.get("is_active") == Some("false")] { "Deactivated" }
            }
            button type="submit" { "Filter" }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "E-mail" }
                    th scope="col" { "Role" } th scope="col" { "Branches" } th scope="col" { "Regions" }
                    th scope="col" { "Last login" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for u in &rows.results {
                        tr {
                            td { (u.username) }
                            td { (u.full_name) }
                            td { (u.email) }
                            td { @if let Some(role) = &u.primary_group_display { (chip("", role)) } }
                            td { (u.branches_data.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { (u.regions_data.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { @if let Some(at) = u.last_login { (day(&at.to_rfc3339())) } @else { "—" } }
                            td {
                                @if u.is_active && u.id != user.auth.user_id.get() && may(principal, Action::Delete, ResourceKind::User) {
                                    (action_button(&user, &format!("/admin/users/{}/deactivate/", u.id), "Deactivate", Some("Deactivate this user? They are signed out at once.")))
                                }
                            }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="8" { "No users match." } } }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Users", "users", body)
}

/// The options of the user form: the roles, branches and regions the actor may grant.
async fn user_options(
    user: &WebUser,
) -> Result<
    (
        Vec<(String, String)>,
        Vec<(String, String)>,
        Vec<(String, String)>,
    ),
    ApiError,
> {
    let principal = &user.auth.principal;
    let roles = grantable_roles(principal)
        .into_iter()
        .map(|r| (r.group_name().to_owned(), r.display_name().to_owned()))
        .collect();
    let branch_list = if may(principal, Action::View, ResourceKind::Branch) {
        let Json(rows) = branches::options(user.auth.clone()).await?;
        rows.into_iter()
            .map(|b| (b.id.to_string(), b.name))
            .collect()
    } else {
        Vec::new()
    };
    let region_list = if may(principal, Action::View, ResourceKind::Region) {
        let (pagination, raw) = super::options::first_page("/api/v1/regions/", &[]);
        let Json(rows) = regions::list(user.auth.clone(), pagination, raw).await?;
        rows.results
            .into_iter()
            .map(|r| (r.id.to_string(), r.name))
            .collect()
    } else {
        Vec::new()
    };
    Ok((roles, branch_list, region_list))
}

async fn user_form(user: &WebUser, values: &Map<String, Value>, errors: &FormErrors) -> Response {
    let (roles, branch_list, region_list) = match user_options(user).await {
        Ok(options) => options,
        Err(err) => return error_page(&err, Some(user)),
    };
    let text = |name: &str| {
        values
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let chosen = |name: &str| -> Vec<String> {
        values
            .get(name)
            .and_then(Value::as_array)
            .map(|ids| ids.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default()
    };
    let (branches_chosen, regions_chosen) = (chosen("branch_ids"), chosen("region_ids"));
    let shown = [
        "username",
        "email",
        "first_name",
        "last_name",
        "password",
        "group_name",
        "branch_ids",
        "region_ids",
    ];
    let body = html! {
        h1 { "New user" }
        (errors.alert(&shown))
        form.fields method="post" action="/admin/users/new/" novalidate {
            (csrf_field(user))
            (input("username", "Username", "text", &text("username"), errors, true))
            (input("email", "E-mail", "email", &text("email"), errors, true))
            (input("first_name", "First name", "text", &text("first_name"), errors, true))
            (input("last_name", "Last name", "text", &text("last_name"), errors, true))
            (input("password", "Password", "password", "", errors, true))
            (select("group_name", "Role", &roles, &text("group_name"), Some("—"), errors))
            @if !branch_list.is_empty() {
                div.field {
                    label for="f-branch_ids" { "Branches" }
                    select #f-branch_ids name="branch_ids" multiple size="4" {
                        @for (value, label) in &branch_list {
                            option value=(value) selected[branches_chosen.contains(value)] { (label) }
                        }
                    }
                    @if !errors.of("branch_ids").is_empty() { p.error { (errors.of("branch_ids").join(" ")) } }
                }
            }
            @if !region_list.is_empty() {
                div.field {
                    label for="f-region_ids" { "Regions" }
                    select #f-region_ids name="region_ids" multiple size="4" {
                        @for (value, label) in &region_list {
                            option value=(value) selected[regions_chosen.contains(value)] { (label) }
                        }
                    }
                    @if !errors.of("region_ids").is_empty() { p.error { (errors.of("region_ids").join(" ")) } }
                }
            }
            div.wide { button.primary type="submit" { "Create user" } " " a href="/admin/users/" { "Cancel" } }
        }
    };
    let mut response = page(user, "New user", "users", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    response
}

/// `GET /admin/users/new/`.
pub(crate) async fn users_new(user: WebUser) -> Response {
    if let Err(err) = crate::api::require(&user.auth.principal, Action::Add, ResourceKind::User) {
        return error_page(&err, Some(&user));
    }
    user_form(&user, &Map::new(), &FormErrors::default()).await
}

/// `POST /admin/users/new/`.
pub(crate) async fn users_create(State(state): State<AppState>, form: WebForm) -> Response {
    let mut body = Map::new();
    for name in [
        "username",
        "email",
        "first_name",
        "last_name",
        "password",
        "group_name",
    ] {
        if let Some(value) = form.fields.get(name) {
            let value = if name == "password" {
                value.as_str()
            } else {
                value.trim()
            };
            body.insert(name.to_owned(), Value::from(value));
        }
    }
    for name in ["branch_ids", "region_ids"] {
        let ids: Vec<Value> = form
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| {
                v.parse::<i64>()
                    .map_or_else(|_| Value::from(v.as_str()), Value::from)
            })
            .collect();
        body.insert(name.to_owned(), Value::Array(ids));
    }
    match users::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body.clone())),
    )
    .await
    {
        Ok(_) => see_other("/admin/users/"),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                body.remove("password");
                user_form(&form.user, &body, &errors).await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `POST /admin/users/{id}/deactivate/`.
pub(crate) async fn users_deactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match users::deactivate(State(state), form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other("/admin/users/"),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

/// `GET /admin/branches/`.
pub(crate) async fn branches_list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let rows = match branches::list(
        user.auth.clone(),
        query.pagination("/admin/branches/"),
        RawQuery(Some(query.raw())),
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let body = html! {
        h1 { "Branches" }
        div.table-wrap {
            table.grid {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Region" } th scope="col" { "Phone" } th scope="col" { "Suburb" } th scope="col" { "Country" } } }
                tbody {
                    @for b in &rows.results {
                        tr { td { (b.name) } td { (b.region_name.as_deref().unwrap_or("—")) } td { (b.phone) } td { (b.suburb) } td { (b.country) } }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="5" { "No branches." } } }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Branches", "branches", body)
}

/// `GET /admin/regions/`.
pub(crate) async fn regions_list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let rows = match regions::list(
        user.auth.clone(),
        query.pagination("/admin/regions/"),
        RawQuery(Some(query.raw())),
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let body = html! {
        h1 { "Regions" }
        div.table-wrap {
            table.grid {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th.num scope="col" { "Branches" } } }
                tbody {
                    @for r in &rows.results {
                        tr { td { (r.name) } td { (r.description) } td.num { (r.branch_count) } }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="3" { "No regions." } } }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Regions", "regions", body)
}

// ----- groups and their permissions ------------------------------------------------------------

/// `GET /admin/groups/`: the groups (roles and custom groups) with their sizes.
pub(crate) async fn groups_list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let rows = match groups::list(user.auth.clone(), query.pagination("/admin/groups/")).await {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let changes = user
        .auth
        .principal
        .has(leopard_rbac::Permission::CHANGE_GROUP);
    let body = html! {
        div.toolbar {
            h1.grow { "Groups" }
            @if changes { a.button.primary href="/admin/groups/new/" { "New group" } }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Group" }
                    th.num scope="col" { "Permissions" } th.num scope="col" { "Users" }
                } }
                tbody {
                    @for g in &rows.results {
                        tr {
                            td { a href={ "/admin/groups/" (g.id) "/" } { (g.display_name) } }
                            td { code { (g.name) } }
                            td.num { (g.permissions_count) }
                            td.num { (g.users_count) }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="4" { "No groups." } } }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Groups", "groups", body)
}

/// One permission of the catalogue: id, name, codename.
type PermissionEntry = (i32, String, String);

/// The permission catalogue, grouped by model: (model, its permissions).
async fn permission_catalogue(
    user: &WebUser,
) -> Result<Vec<(String, Vec<PermissionEntry>)>, ApiError> {
    let q = Query(vec![("page_size".into(), "1000".into())]);
    let Json(rows) =
        permissions::list(user.auth.clone(), q.pagination("/api/v1/permissions/")).await?;
    let mut out: Vec<(String, Vec<PermissionEntry>)> = Vec::new();
    for p in rows.results {
        let entry = (p.id, p.name, p.codename);
        match out
            .iter_mut()
            .find(|(model, _)| *model == p.content_type_display)
        {
            Some((_, list)) => list.push(entry),
            None => out.push((p.content_type_display, vec![entry])),
        }
    }
    Ok(out)
}

/// The group form: name and the permissions as checkboxes per model (only those the actor
/// holds are enabled: nobody grants what it lacks; the operation refuses anyway).
async fn group_form(
    user: &WebUser,
    action: &str,
    name: &str,
    chosen: &[i32],
    builtin: bool,
    errors: &FormErrors,
    extra: maud::Markup,
) -> Response {
    let catalogue = match permission_catalogue(user).await {
        Ok(catalogue) => catalogue,
        Err(err) => return error_page(&err, Some(user)),
    };
    let held = user.auth.principal.permissions().codenames();
    let title = if name.is_empty() {
        "New group".to_owned()
    } else {
        name.to_owned()
    };
    let body = html! {
        p.muted { a href="/admin/groups/" { "← Groups" } }
        h1 { (title) }
        (errors.alert(&["name", "permission_ids"]))
        form.fields method="post" action=(action) novalidate {
            (csrf_field(user))
            @if builtin {
                p.muted.wide { "A built-in role group: its name is fixed." }
                input type="hidden" name="name" value=(name);
            } @else {
                (input("name", "Name", "text", name, errors, true))
            }
            @if !errors.of("permission_ids").is_empty() { p.error.wide { (errors.of("permission_ids").join(" ")) } }
            @for (model, perms) in &catalogue {
                fieldset.wide.perms {
                    legend { (model) }
                    @for (id, label, codename) in perms {
                        @let grantable = held.contains(&codename.as_str());
                        label.check {
                            input type="checkbox" name="permission_ids" value=(id)
                                checked[chosen.contains(id)] disabled[!grantable && !chosen.contains(id)];
                            " " (label)
                        }
                    }
                }
            }
            div.wide { button.primary type="submit" { "Save" } " " a href="/admin/groups/" { "Cancel" } }
        }
        (extra)
    };
    let mut response = page(user, &title, "groups", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    response
}

/// The group body of a submitted form.
fn group_body(form: &WebForm) -> (String, Vec<i32>, Value) {
    let name = form.get("name").unwrap_or("").trim().to_owned();
    let ids: Vec<i32> = form
        .pairs
        .iter()
        .filter(|(k, _)| k == "permission_ids")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let body = serde_json::json!({ "name": name, "permission_ids": ids });
    (name, ids, body)
}

/// `GET /admin/groups/new/`.
pub(crate) async fn groups_new(user: WebUser) -> Response {
    if let Err(err) =
        crate::api::require_permission(&user.auth.principal, leopard_rbac::Permission::CHANGE_GROUP)
    {
        return error_page(&err, Some(&user));
    }
    group_form(
        &user,
        "/admin/groups/new/",
        "",
        &[],
        false,
        &FormErrors::default(),
        html! {},
    )
    .await
}

/// `POST /admin/groups/new/`.
pub(crate) async fn groups_create(form: WebForm) -> Response {
    let (name, ids, body) = group_body(&form);
    match groups::create(form.user.auth.clone(), JsonBody(body)).await {
        Ok((_, Json(group))) => see_other(&format!("/admin/groups/{}/", group.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                group_form(
                    &form.user,
                    "/admin/groups/new/",
                    &name,
                    &ids,
                    false,
                    &errors,
                    html! {},
                )
                .await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /admin/groups/{id}/`: the group's permissions (its form for those who change groups).
pub(crate) async fn groups_show(user: WebUser, Path(id): Path<String>) -> Response {
    let group = match groups::retrieve(user.auth.clone(), Path(id.clone())).await {
        Ok(Json(group)) => group,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let builtin = leopard_rbac::Role::from_group_name(&group.name).is_some();
    if user
        .auth
        .principal
        .has(leopard_rbac::Permission::CHANGE_GROUP)
    {
        let chosen: Vec<i32> = group.permissions_list.iter().map(|p| p.id).collect();
        // The delete button sits outside the form (forms do not nest).
        let extra = html! {
            @if !builtin {
                (action_button(
                    &user,
                    &format!("/admin/groups/{}/delete/", group.id),
                    "Delete group",
                    Some("Delete this group? Its users lose its permissions."),
                ))
            }
        };
        return group_form(
            &user,
            &format!("/admin/groups/{}/", group.id),
            &group.name,
            &chosen,
            builtin,
            &FormErrors::default(),
            extra,
        )
        .await;
    }
    let body = html! {
        p.muted { a href="/admin/groups/" { "← Groups" } }
        h1 { (group.display_name) }
        p.muted { (group.users_count) " user(s), " (group.permissions_count) " permission(s)" }
        ul.compact { @for p in &group.permissions_list { li { (p.name) } } }
    };
    page(&user, &group.display_name, "groups", body)
}

/// `POST /admin/groups/{id}/`: rename (custom groups) and replace the permissions.
pub(crate) async fn groups_update(Path(id): Path<String>, form: WebForm) -> Response {
    let (name, ids, body) = group_body(&form);
    match groups::update(form.user.auth.clone(), Path(id.clone()), JsonBody(body)).await {
        Ok(Json(group)) => see_other(&format!("/admin/groups/{}/", group.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                let builtin = leopard_rbac::Role::from_group_name(&name).is_some();
                group_form(
                    &form.user,
                    &format!("/admin/groups/{id}/"),
                    &name,
                    &ids,
                    builtin,
                    &errors,
                    html! {},
                )
                .await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `POST /admin/groups/{id}/delete/`: refused for the built-in role groups.
pub(crate) async fn groups_delete(Path(id): Path<String>, form: WebForm) -> Response {
    match groups::destroy(form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other("/admin/groups/"),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}
