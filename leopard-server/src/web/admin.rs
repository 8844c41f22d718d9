//! Administration (by permission): users — list with search, role and status filters, create
//! with a role, branches and regions under the hierarchy rules, deactivate — and the lists of
//! branches and regions. Each is the API's operation from [`crate::api::identity`]: the
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
use crate::api::identity::{branches, regions, users};
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
        let q = Query(vec![("page_size".into(), "1000".into())]);
        let Json(rows) = regions::list(
            user.auth.clone(),
            q.pagination("/api/v1/regions/"),
            RawQuery(Some(q.raw())),
        )
        .await?;
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
