//! Notifications: the page (all or unread, paged), the bell's drop-down fragment, mark one
//! read, mark all read, and the live stream behind the bell — the API's operations from
//! [`crate::api::crm::notifications`] and the API's own stream ([`crate::realtime::open`]),
//! authenticated by the session cookie instead of a token.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use leopard_http::JsonBody;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::widgets::{action_button, chip, csrf_field, minute, page, pager, Query};
use super::{error_page, html_response, session::see_other, WebForm, WebUser};
use crate::api::crm::notifications::{self as api, NotificationOutput};
use crate::app::AppState;

fn rows(user: &WebUser, rows: &[NotificationOutput], actions: bool) -> Markup {
    html! {
        ul.compact {
            @for n in rows {
                li class=[(!n.read).then_some("unread")] {
                    div {
                        @if !n.read { strong { (n.title) } } @else { (n.title) }
                        " " (chip(&n.notification_type, &n.notification_type_display))
                        br;
                        span.muted { (n.message) }
                        br;
                        time.muted datetime=(n.created_at) { (minute(&n.created_at)) }
                    }
                    @if actions && !n.read {
                        (action_button(user, &format!("/notifications/{}/read/", n.id), "Mark read", None))
                    }
                }
            }
            @if rows.is_empty() { li.muted { "No notifications." } }
        }
    }
}

/// `GET /notifications/?unread=1`.
pub(crate) async fn list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let unread_only = query.get("unread").is_some();
    let mut api_query = Query(
        query
            .0
            .iter()
            .filter(|(k, _)| k == "page" || k == "page_size")
            .cloned()
            .collect(),
    );
    if unread_only {
        api_query.0.push(("include_read".into(), "false".into()));
    }
    let page_of = api::list(
        user.auth.clone(),
        api_query.pagination("/notifications/"),
        RawQuery(Some(api_query.raw())),
    )
    .await;
    let Json(found) = match page_of {
        Ok(found) => found,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let unread_ids: Vec<i64> = found
        .results
        .iter()
        .filter(|n| !n.read)
        .map(|n| n.id)
        .collect();
    let body = html! {
        div.toolbar {
            h1.grow { "Notifications" }
            @if unread_only { a href="/notifications/" { "Show all" } } @else { a href="/notifications/?unread=1" { "Unread only" } }
            @if !unread_ids.is_empty() {
                form.inline method="post" action="/notifications/read-all/" {
                    (csrf_field(&user))
                    @for id in &unread_ids { input type="hidden" name="id" value=(id); }
                    button type="submit" { "Mark all read" }
                }
            }
        }
        div.card { (rows(&user, &found.results, true)) }
        (pager(&query, found.count))
    };
    page(&user, "Notifications", "notifications", body)
}

/// `GET /notifications/menu/`: the bell's drop-down (the ten newest), an HTML fragment.
pub(crate) async fn menu(user: WebUser) -> Response {
    let query = Query(vec![("page_size".into(), "10".into())]);
    match api::list(
        user.auth.clone(),
        query.pagination("/notifications/"),
        RawQuery(Some(query.raw())),
    )
    .await
    {
        Ok(Json(found)) => {
            let mut response = html_response(html! {
                (rows(&user, &found.results, false))
                p.menu-foot { a href="/notifications/" { "All notifications" } }
            });
            super::add_security_headers(&mut response);
            response
        }
        Err(err) => error_page(&err, Some(&user)),
    }
}

/// `POST /notifications/{id}/read/`.
pub(crate) async fn read(Path(id): Path<String>, form: WebForm) -> Response {
    match api::mark_read(form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other("/notifications/"),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

/// `POST /notifications/read-all/`: marks the listed (`id` repeated) notifications read.
pub(crate) async fn read_all(form: WebForm) -> Response {
    let ids: Vec<Value> = form
        .pairs
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| {
            v.parse::<i64>()
                .map_or_else(|_| Value::from(v.as_str()), Value::from)
        })
        .collect();
    let body = json!({ "notification_ids": ids });
    match api::bulk_mark_read(form.user.auth.clone(), JsonBody(body)).await {
        Ok(_) => see_other("/notifications/"),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

/// `GET /stream/`: the session user's notification stream (the API's stream, same frames).
pub(crate) async fn stream(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = crate::api::input::list_params(raw.as_deref());
    match crate::realtime::open(&state, &user.auth, &headers, &params).await {
        Ok(response) => response,
        Err(err) => error_page(&err, Some(&user)),
    }
}
