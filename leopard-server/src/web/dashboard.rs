//! The dashboard (`/`): clients per stage, my overdue and due-soon tasks, upcoming calendar
//! events, visa-application status counts, college-application stage counts and the
//! college-application statistics for a time filter. Each card is the API's own operation and
//! appears only when the user holds the permission it needs; each number links to the list it
//! counts where that list has a page.

use axum::extract::RawQuery;
use axum::response::Response;
use axum::Json;
use leopard_http::ApiError;
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};
use serde_json::Value;

use super::widgets::{display, may, minute, page, Query};
use super::{error_page, WebUser};
use crate::api::applications::{college_applications, visa_applications};
use crate::api::crm::{calendar, clients, tasks};

const TIME_FILTERS: &[(&str, &str)] = &[
    ("today", "Today"),
    ("this_week", "This week"),
    ("this_month", "This month"),
    ("all", "All time"),
];

fn stat(value: i64, label: &str, href: Option<String>) -> Markup {
    html! {
        @if let Some(href) = href {
            a.stat href=(href) { b { (value) } span { (label) } }
        } @else {
            div.stat { b { (value) } span { (label) } }
        }
    }
}

async fn clients_card(user: &WebUser) -> Result<Markup, ApiError> {
    let Json(counts) = clients::stage_counts(user.auth.clone()).await?;
    Ok(html! {
        div.card {
            h2 { "Clients by stage" }
            div.stats {
                (stat(counts.lead, "Lead", Some("/clients/?stage=LEAD".into())))
                (stat(counts.follow_up, "Follow up", Some("/clients/?stage=FOLLOW_UP".into())))
                (stat(counts.client, "Client", Some("/clients/?stage=CLIENT".into())))
                (stat(counts.close, "Closed", Some("/clients/?stage=CLOSE".into())))
                (stat(counts.total, "Total", Some("/clients/".into())))
            }
        }
    })
}

async fn tasks_card(user: &WebUser) -> Result<Markup, ApiError> {
    let Json(overdue) = tasks::overdue(user.auth.clone()).await?;
    let Json(due_soon) =
        tasks::due_soon(user.auth.clone(), RawQuery(Some("days=1".into()))).await?;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(html! {
        div.card {
            h2 { "My tasks" }
            div.stats {
                (stat(count(overdue.len()), "Overdue", Some("/tasks/?view=overdue".into())))
                (stat(count(due_soon.len()), "Due within a day", Some("/tasks/?view=due_soon".into())))
            }
            ul.compact {
                @for task in overdue.iter().chain(due_soon.iter()).take(6) {
                    li { a href={ "/tasks/" (task.id) "/" } { (task.title) } span.muted { (minute(&task.due_date)) } }
                }
            }
        }
    })
}

async fn calendar_card(user: &WebUser) -> Result<Markup, ApiError> {
    let query = Query(vec![
        ("days".into(), "7".into()),
        ("page_size".into(), "8".into()),
    ]);
    let Json(events) = calendar::upcoming(
        user.auth.clone(),
        query.pagination("/api/v1/events/upcoming/"),
        RawQuery(Some(query.raw())),
    )
    .await?;
    Ok(html! {
        div.card {
            h2 { a href="/calendar/" { "Upcoming events (7 days)" } }
            ul.compact {
                @for event in &events.results {
                    li { a href={ "/calendar/" (event.id) "/" } { (event.title) } span.muted { (minute(&event.start)) } }
                }
                @if events.results.is_empty() { li.muted { "Nothing scheduled." } }
            }
        }
    })
}

async fn visa_card(user: &WebUser) -> Result<Markup, ApiError> {
    let Json(c) = visa_applications::status_counts(user.auth.clone()).await?;
    Ok(html! {
        div.card {
            h2 { "Visa applications" }
            div.stats {
                (stat(c.to_be_applied, "To be applied", None))
                (stat(c.visa_applied, "Applied", None))
                (stat(c.case_opened, "Case opened", None))
                (stat(c.granted, "Granted", None))
                (stat(c.rejected, "Rejected", None))
                (stat(c.withdrawn, "Withdrawn", None))
                (stat(c.total, "Total", None))
            }
        }
    })
}

/// A `[{…name…, count}]` array of the statistics as `(label, count)` rows.
fn counted(rows: &Value) -> Vec<(String, i64)> {
    rows.as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|row| {
                    let object = row.as_object()?;
                    let count = object.get("count")?.as_i64()?;
                    let label = object
                        .iter()
                        .filter(|(k, _)| k.as_str() != "count")
                        .find_map(|(_, v)| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    Some((label, count))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn college_card(user: &WebUser, time_filter: &str) -> Result<Markup, ApiError> {
    let Json(counts) =
        college_applications::stage_counts(user.auth.clone(), RawQuery(None)).await?;
    let Json(stats) = college_applications::dashboard_statistics(
        user.auth.clone(),
        RawQuery(Some(format!("time_filter={time_filter}"))),
    )
    .await?;
    let sections: Vec<(String, Vec<(String, i64)>)> = stats
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (display(&k.to_uppercase()), counted(v)))
                .filter(|(_, rows)| !rows.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let totals: Vec<(String, i64)> = stats
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_i64().map(|n| (display(&k.to_uppercase()), n)))
                .collect()
        })
        .unwrap_or_default();
    Ok(html! {
        div.card.span2 {
            h2 { "College applications by stage" }
            div.stats {
                @for stage in &counts.by_stage { (stat(stage.count, &stage.stage_name, None)) }
                (stat(counts.total, "Total", None))
            }
            h2 { "Statistics" }
            nav.tabs aria-label="Time filter" {
                @for (key, label) in TIME_FILTERS {
                    @if *key == time_filter {
                        a href={ "?time_filter=" (key) } aria-current="page" { (label) }
                    } @else {
                        a href={ "?time_filter=" (key) } { (label) }
                    }
                }
            }
            div.stats { @for (label, n) in &totals { (stat(*n, label, None)) } }
            @for (title, rows) in &sections {
                h2 { (title) }
                ul.compact { @for (label, n) in rows.iter().take(6) { li { span { (label) } b { (n) } } } }
            }
        }
    })
}

/// `GET /?time_filter=`.
pub(crate) async fn show(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let time_filter = query
        .get("time_filter")
        .filter(|f| TIME_FILTERS.iter().any(|(k, _)| k == f))
        .unwrap_or("all")
        .to_owned();
    let principal = &user.auth.principal;
    let none = || async { Ok::<_, ApiError>(html! {}) };
    let cards = tokio::try_join!(
        async {
            if may(principal, Action::View, ResourceKind::Client) {
                clients_card(&user).await
            } else {
                none().await
            }
        },
        async {
            if may(principal, Action::View, ResourceKind::Task) {
                tasks_card(&user).await
            } else {
                none().await
            }
        },
        async {
            if may(principal, Action::View, ResourceKind::CalendarEvent) {
                calendar_card(&user).await
            } else {
                none().await
            }
        },
        async {
            if may(principal, Action::View, ResourceKind::VisaApplication) {
                visa_card(&user).await
            } else {
                none().await
            }
        },
        async {
            if may(principal, Action::View, ResourceKind::CollegeApplication) {
                college_card(&user, &time_filter).await
            } else {
                none().await
            }
        },
    );
    let (clients, tasks, calendar, visa, college) = match cards {
        Ok(cards) => cards,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let body = html! {
        h1 { "Dashboard" }
        div.cards { (clients) (tasks) (calendar) (visa) (college) }
    };
    page(&user, "Dashboard", "dashboard", body)
}
