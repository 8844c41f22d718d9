//! The API resources, one module per resource: routes, thin handlers, and the SQL in functions
//! taking a tenant connection. The resources are grouped by what they are about:
//! [`identity`] (tokens, users, groups, permissions, regions, branches), [`crm`] (clients, their
//! profile sections, notes, tasks, reminders, calendar, notifications), [`applications`] (visa
//! and college applications with their types and stages), [`master`] (agents, institutes,
//! courses) and [`platform`] (the platform admin on the base host). This module holds what they
//! share: the route table, permission gates and list-filter helpers; [`input`] parses request
//! bodies and parameters, [`events`] records their domain events.
//!
//! Every handler follows the same shape: parse, authorize (a permission gate with
//! [`require`], then the row scope with `leopard_rbac::check` or `filter` — out of scope is a
//! 404), call a named data function inside one tenant transaction, shape the response.

use axum::routing::MethodRouter;
use axum::Router;
use http::Method;
use leopard_http::ApiError;
use leopard_rbac::{Action, Permission, Principal, ResourceKind, SqlParam, SqlPredicate};
use sqlx::postgres::PgArguments;
use sqlx::Arguments as _;

use crate::app::AppState;

pub mod applications;
pub mod crm;
pub(crate) mod events;
pub mod identity;
pub(crate) mod input;
pub mod master;
pub mod platform;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A tenant route open without a token (login, refresh: they check their own credentials).
    TenantPublic,
    /// A tenant route needing a tenant access token ([`leopard_http::AuthUser`]).
    Tenant,
    /// A platform route on the base host, needing a platform token (or none: platform login).
    Platform,
}

/// One path of the API with its methods: the router is built from these, so tests and the
/// OpenAPI document can iterate exactly the routes that are served.
pub struct ApiRoute {
    /// The path, with `{param}` placeholders.
    pub path: &'static str,
    /// The methods served at `path`.
    pub methods: Vec<Method>,
    /// Who may call it.
    pub access: Access,
    /// What the OpenAPI document says of some methods where its defaults do not hold.
    docs: Vec<(Method, OpDoc)>,
    router: MethodRouter<AppState>,
}

/// What the OpenAPI document ([`crate::openapi`]) says of one method of a route where the
/// defaults derived from the path and method do not hold. Set with [`ApiRoute::paginated`],
/// [`ApiRoute::statuses`], [`ApiRoute::upload`], [`ApiRoute::produces`] and
/// [`ApiRoute::countries`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpDoc {
    /// Whether a GET answers a page `{count, next, previous, results}`.
    pub paginated: Option<bool>,
    /// The success statuses.
    pub statuses: Option<&'static [u16]>,
    /// The body is `multipart/form-data` with this one file field.
    pub upload: Option<&'static str>,
    /// The media type of the success body when it is not JSON.
    pub produces: Option<&'static str>,
    /// The body's country fields: each takes an ISO 3166-1 alpha-2 code
    /// (`#/components/schemas/CountryCode`).
    pub countries: Option<&'static [&'static str]>,
}

impl ApiRoute {
    /// What the OpenAPI document should say of `method` beyond its defaults.
    pub fn doc(&self, method: &Method) -> OpDoc {
        self.docs
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, d)| *d)
            .unwrap_or_default()
    }

    fn with_doc(mut self, method: Method, change: impl FnOnce(&mut OpDoc)) -> Self {
        match self.docs.iter_mut().find(|(m, _)| *m == method) {
            Some((_, doc)) => change(doc),
            None => {
                let mut doc = OpDoc::default();
                change(&mut doc);
                self.docs.push((method, doc));
            }
        }
        self
    }

    /// Documents whether the route's GET answers a page (the default: a GET on a collection
    /// path that also takes POST does).
    #[must_use]
    pub fn paginated(self, yes: bool) -> Self {
        self.with_doc(Method::GET, |d| d.paginated = Some(yes))
    }

    /// Documents the success statuses of `method` (the defaults: 201 for a POST on a
    /// collection path that also takes GET, 204 for DELETE, 200 otherwise).
    #[must_use]
    pub fn statuses(self, method: Method, statuses: &'static [u16]) -> Self {
        self.with_doc(method, |d| d.statuses = Some(statuses))
    }

    /// Documents `method` as taking `multipart/form-data` with the file field `field`.
    #[must_use]
    pub fn upload(self, method: Method, field: &'static str) -> Self {
        self.with_doc(method, |d| d.upload = Some(field))
    }

    /// Documents the country `fields` of the bodies of POST, PUT and PATCH (whichever the route
    /// serves): each is an ISO 3166-1 alpha-2 code.
    #[must_use]
    pub fn countries(mut self, fields: &'static [&'static str]) -> Self {
        if fields.is_empty() {
            return self;
        }
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            if self.methods.contains(&method) {
                self = self.with_doc(method, |d| d.countries = Some(fields));
            }
        }
        self
    }

    /// Documents `method` as answering a body of media type `media` rather than JSON.
    #[must_use]
    pub fn produces(self, method: Method, media: &'static str) -> Self {
        self.with_doc(method, |d| d.produces = Some(media))
    }
}

impl std::fmt::Debug for ApiRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRoute")
            .field("path", &self.path)
            .field("methods", &self.methods)
            .field("access", &self.access)
            .field("docs", &self.docs)
            .finish_non_exhaustive()
    }
}

/// A route at `path` serving each `(method, handler)` pair.
pub fn route(
    path: &'static str,
    access: Access,
    handlers: impl IntoIterator<Item = (Method, MethodRouter<AppState>)>,
) -> ApiRoute {
    let mut methods = Vec::new();
    let mut router = MethodRouter::new();
    for (method, handler) in handlers {
        methods.push(method);
        router = router.merge(handler);
    }
    ApiRoute {
        path,
        methods,
        access,
        docs: Vec::new(),
        router: router.fallback(method_not_allowed),
    }
}

/// A known path asked with a method it does not serve: a JSON 405.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Every API route, resource by resource.
pub fn table() -> Vec<ApiRoute> {
    [
        identity::auth::routes(),
        identity::users::routes(),
        identity::groups::routes(),
        identity::permissions::routes(),
        identity::regions::routes(),
        identity::branches::routes(),
        crm::clients::routes(),
        crm::notes::routes(),
        crm::reminders::routes(),
        crm::calendar::routes(),
        crm::tasks::routes(),
        crm::notifications::routes(),
        crm::profile_pictures::routes(),
        crm::language_exams::routes(),
        crm::proficiencies::routes(),
        crm::qualifications::routes(),
        crm::employments::routes(),
        crm::passports::routes(),
        master::agents::routes(),
        applications::visa::routes(),
        applications::visa_applications::routes(),
        master::institutes::routes(),
        master::courses::routes(),
        applications::application_types::routes(),
        applications::stages::routes(),
        applications::college_applications::routes(),
        platform::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The router serving [`table`].
pub fn routes() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.router))
}

/// 403 unless `principal` holds the permission to do `action` on `kind`.
pub fn require(principal: &Principal, action: Action, kind: ResourceKind) -> Result<(), ApiError> {
    require_permission(principal, Permission::new(kind, action))
}

/// 403 unless `principal` may view at least one of `kinds`: master data a resource's form needs
/// is readable with that resource's view permission too (visa types with `view_client`,
/// campuses with `view_institute`, …).
pub fn require_view_of_any(principal: &Principal, kinds: &[ResourceKind]) -> Result<(), ApiError> {
    if kinds
        .iter()
        .any(|k| principal.has(Permission::new(*k, Action::View)))
    {
        Ok(())
    } else {
        Err(ApiError::permission_denied())
    }
}

/// 403 unless `principal` holds `permission`.
pub fn require_permission(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    if principal.has(permission) {
        Ok(())
    } else {
        Err(ApiError::permission_denied())
    }
}

/// A query-string boolean: `true`/`1`/`yes`/`on` (any case) are true, everything else false.
pub fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

/// Appends `value` to `args` (the next `$n`).
pub fn push_arg<'q, T>(args: &mut PgArguments, value: T) -> Result<(), ApiError>
where
    T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
{
    args.add(value)
        .map_err(|e| ApiError::Internal(format!("binding a parameter: {e}")))
}

/// Appends a policy predicate's parameters to `args`, in order. Build the predicate with
/// `first_param` = the number of parameters already in `args` + 1, splice `predicate.sql` into
/// the query, then run it with `sqlx::query_with(&sql, args)` (or `query_as_with`, …).
pub fn push_predicate(args: &mut PgArguments, predicate: &SqlPredicate) -> Result<(), ApiError> {
    for param in &predicate.params {
        match param {
            SqlParam::Int(v) => push_arg(args, *v)?,
            SqlParam::IntArray(v) => push_arg(args, v.clone())?,
        }
    }
    Ok(())
}

/// A list query's `WHERE` clause with its bound arguments and the number of the last `$n`
/// used, as the list helpers of each resource build it.
pub type Filters = (String, PgArguments, usize);

/// The filters of a list that has none (every row), for [`fetch_page`].
pub fn no_filters() -> Result<Filters, ApiError> {
    Ok(("TRUE".to_owned(), PgArguments::default(), 0))
}

/// One page of `select` (a `SELECT … FROM <table> <alias>` without `WHERE`) matching the
/// filters built by `filters`, ordered by `order`, and the total count over `from` (`<table>
/// <alias>`), from the request's count cache when it holds it ([`crate::counts`]). `filters`
/// runs twice because each query consumes its arguments.
pub async fn fetch_page<T>(
    conn: &mut sqlx::PgConnection,
    select: &str,
    from: &str,
    order: &str,
    filters: impl Fn() -> Result<Filters, ApiError>,
    pagination: &leopard_http::Pagination,
) -> Result<(Vec<T>, i64), ApiError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let (clause, args, _) = filters()?;
    let count = crate::counts::count(
        &mut *conn,
        &format!("SELECT count(*) FROM {from} WHERE {clause}"),
        args,
    )
    .await?;
    let (clause, args, _) = filters()?;
    let sql = format!(
        "{select} WHERE {clause} ORDER BY {order} {}",
        pagination.limit_clause()
    );
    let rows = sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?;
    Ok((rows, count))
}

/// The `ORDER BY` of a list from its `ordering` parameter (DRF's `OrderingFilter`): a
/// comma-separated list of the whitelisted `allowed` fields (`(field, column)`), each optionally
/// prefixed with `-` for descending; any other field is a 400 on `ordering`. Without the
/// parameter the order is `default`. The order always ends with `id_column` descending (unless
/// the parameter names `id`), so pages are stable.
pub fn ordering(
    params: &std::collections::HashMap<String, String>,
    allowed: &[(&str, &str)],
    default: &str,
    id_column: &str,
) -> Result<String, ApiError> {
    let Some(raw) = input::param(params, "ordering") else {
        return Ok(default.to_owned());
    };
    let mut terms = Vec::new();
    let mut has_id = false;
    for field in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (name, dir) = match field.strip_prefix('-') {
            Some(name) => (name, "DESC"),
            None => (field, "ASC"),
        };
        let column = allowed
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                ApiError::field(
                    "ordering",
                    format!("\"{name}\" is not a valid ordering field."),
                )
            })?;
        has_id |= name == "id";
        terms.push(format!("{column} {dir}"));
    }
    if terms.is_empty() {
        return Ok(default.to_owned());
    }
    if !has_id {
        terms.push(format!("{id_column} DESC"));
    }
    Ok(terms.join(", "))
}

/// The start of a soft-deleted resource's list filters: the policy scope for viewing `kind`
/// (columns `columns`), and `<alias>.deleted_at IS NULL` unless the query asks for
/// `include_deleted` and the principal may delete that kind. Returns the clauses, their
/// arguments and the last `$n` used.
pub fn scoped_live_filters(
    principal: &Principal,
    kind: ResourceKind,
    columns: &leopard_rbac::ScopeColumns<'_>,
    alias: &str,
    params: &std::collections::HashMap<String, String>,
) -> Result<(Vec<String>, PgArguments, usize), ApiError> {
    let mut args = PgArguments::default();
    let scope = leopard_rbac::filter(principal, Action::View, kind, columns, 1);
    let n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql];
    let with_deleted = input::param(params, "include_deleted").is_some_and(truthy)
        && principal.has(Permission::new(kind, Action::Delete));
    if !with_deleted {
        clauses.push(format!("{alias}.deleted_at IS NULL"));
    }
    Ok((clauses, args, n))
}
