//! `/api/v1/stages/` (+ `reorder/`): the ordered stages of an application type, positions
//! 1..n per type with the highest the final stage.
//!
//! - Reading needs `view_stage`, `view_applicationtype` or `view_collegeapplication`; the list
//!   is a bare array (optionally `?application_type_id=`), by type then position, of live
//!   types only.
//! - Writes are verb-level: `add_stage` (create), `change_stage` (PATCH, reorder),
//!   `delete_stage` (a hard delete).
//! - Positions stay 1..n and unique whatever the interleaving of requests: every write locks
//!   its type's row first (so writes to one type run one after the other) and rewrites the
//!   positions it moves in one statement, against a deferrable unique constraint checked at
//!   the end of that statement. No request fails mid-way on a position clash.
//! - Create inserts at `position` (clamped to n + 1; omitted = append), shifting later stages
//!   down; PATCH renames, describes or moves one stage (`position`, clamped to 1..n); delete
//!   is refused (400) while live applications are in the stage, and closes the gap. Soft-deleted
//!   applications still in it move to the type's first remaining stage (a 400 when none is
//!   left).
//! - Reorder takes `{application_type_id, stages: [{stage_id, new_position}]}`: the listed
//!   stages go to their new positions and the others keep their relative order in the
//!   remaining slots; it answers the type's full ordered list.
//! - Writes record `Stage.CREATE`, `Stage.UPDATE` (the changed fields; reorder and shifts name
//!   `position`) and `Stage.DELETE`.

use std::collections::HashSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use http::Method;
use leopard_events::NewEvent;
use leopard_http::{ApiError, AuthUser, JsonBody};
use leopard_rbac::{Action, Principal, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::api::events;
use crate::api::input::{
    int_param, list_params, object, path_id, required_id, required_text, rfc3339, text,
    FieldErrors, Patch,
};
use crate::api::{require, route, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "Stage";

/// The stage routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/stages/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        )
        .paginated(false),
        route(
            "/api/v1/stages/reorder/",
            Access::Tenant,
            [(Method::POST, post(reorder))],
        ),
        route(
            "/api/v1/stages/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A stage (the original's StageOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StageOutput {
    /// Id.
    pub id: i64,
    /// The application type's id.
    pub application_type: i64,
    /// The application type's title.
    pub application_type_title: String,
    /// Name.
    pub stage_name: String,
    /// 1-based position within the type.
    pub position: i32,
    /// Description.
    pub description: String,
    /// Whether it is the type's last stage.
    pub is_final_stage: bool,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const STAGE_SELECT: &str = concat!(
    "SELECT s.id, s.application_type_id AS application_type,
            t.title AS application_type_title, s.stage_name, s.position, s.description,
            s.position = (SELECT max(f.position) FROM stages f
                           WHERE f.application_type_id = s.application_type_id)
                AS is_final_stage,
            s.created_by_id AS created_by, ",
    rfc3339!("s.created_at"),
    " AS created_at, s.updated_by_id AS updated_by, ",
    rfc3339!("s.updated_at"),
    " AS updated_at
       FROM stages s
       JOIN application_types t ON t.id = s.application_type_id AND t.deleted_at IS NULL"
);

fn not_found() -> ApiError {
    ApiError::NotFound("Not found.".into())
}

/// 403 unless `principal` may read stages (see the module doc).
fn require_read(principal: &Principal) -> Result<(), ApiError> {
    crate::api::require_view_of_any(
        principal,
        &[
            ResourceKind::Stage,
            ResourceKind::ApplicationType,
            ResourceKind::CollegeApplication,
        ],
    )
}

/// A position given in a body: a positive integer.
fn position(body: &Map<String, Value>, field: &str, errors: &mut FieldErrors) -> Option<i64> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64().filter(|p| (1..=i64::from(i32::MAX)).contains(p)) {
            Some(p) => Some(p),
            None => {
                errors.add(field, "Ensure this value is a positive integer.");
                None
            }
        },
    }
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/stages/`: a bare array.
pub(crate) async fn list(
    auth: AuthUser,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<StageOutput>>, ApiError> {
    require_read(&auth.principal)?;
    let params = list_params(query.as_deref());
    let of_type = int_param(&params, "application_type_id")?;
    let mut tx = auth.tenant.begin().await?;
    let rows = list_stages(&mut tx, of_type).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// `POST /api/v1/stages/`: 201 with the new stage.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<StageOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::Stage)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let of_type = required_id(&body, "application_type_id", true, &mut errors);
    let name = required_text(&body, "stage_name", 100, true, &mut errors);
    let description = match text(&body, "description", 100_000, &mut errors) {
        Patch::Set(s) => s,
        _ => String::new(),
    };
    let at = position(&body, "position", &mut errors);
    errors.finish()?;
    let (Some(of_type), Some(name)) = (of_type, name) else {
        return Err(ApiError::field("stage_name", "This field is required."));
    };
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    lock_type(&mut tx, of_type, "application_type_id").await?;
    let before = list_stages(&mut tx, Some(of_type)).await?;
    let id = insert_stage(
        &mut tx,
        of_type,
        before.len(),
        (&name, &description),
        at,
        user,
    )
    .await?;
    let after = list_stages(&mut tx, Some(of_type)).await?;
    let out = after
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    let mut recorded = vec![events::created(ENTITY, id, events::state(&out)?, user)];
    recorded.extend(moved_events(&before, &after, user)?);
    events::record(&mut tx, recorded).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/stages/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<StageOutput>, ApiError> {
    require_read(&auth.principal)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_stage(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PATCH /api/v1/stages/{id}/`: `stage_name`, `description`, `position`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<StageOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Stage)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let name = required_text(&body, "stage_name", 100, false, &mut errors);
    let description = match text(&body, "description", 100_000, &mut errors) {
        Patch::Set(s) => Some(s),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    };
    let at = position(&body, "position", &mut errors);
    if body.contains_key("application_type_id") || body.contains_key("application_type") {
        errors.add(
            "application_type_id",
            "The application type of a stage cannot be changed.",
        );
    }
    errors.finish()?;
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let of_type = type_of(&mut tx, id).await?.ok_or_else(not_found)?;
    lock_type(&mut tx, of_type, "id").await?;
    let before = list_stages(&mut tx, Some(of_type)).await?;
    if !before.iter().any(|s| s.id == id) {
        return Err(not_found());
    }
    sqlx::query(
        "UPDATE stages SET stage_name = COALESCE($2, stage_name),
                           description = COALESCE($3, description),
                           updated_by_id = $4, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    if let Some(at) = at {
        let mut order: Vec<i64> = before.iter().map(|s| s.id).filter(|s| *s != id).collect();
        let slot = usize::try_from(at - 1)
            .unwrap_or(usize::MAX)
            .min(order.len());
        order.insert(slot, id);
        apply_order(&mut tx, &order, user).await?;
    }
    let after = list_stages(&mut tx, Some(of_type)).await?;
    let out = after
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    let mut recorded = Vec::new();
    if let Some(old) = before.iter().find(|s| s.id == id) {
        let mut changed = Vec::new();
        if old.stage_name != out.stage_name {
            changed.push("stage_name");
        }
        if old.description != out.description {
            changed.push("description");
        }
        if !changed.is_empty() {
            recorded.push(events::updated_fields(
                ENTITY,
                id,
                events::state(old)?,
                events::state(&out)?,
                &changed,
                user,
            ));
        }
    }
    recorded.extend(moved_events(&before, &after, user)?);
    events::record(&mut tx, recorded).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

/// `DELETE /api/v1/stages/{id}/`: a hard delete closing the gap, 204.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::Stage)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let of_type = type_of(&mut tx, id).await?.ok_or_else(not_found)?;
    lock_type(&mut tx, of_type, "id").await?;
    let before = list_stages(&mut tx, Some(of_type)).await?;
    let old = before
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    remove_stage(&mut tx, &before, id).await?;
    let after = list_stages(&mut tx, Some(of_type)).await?;
    let mut recorded = vec![events::deleted(ENTITY, id, events::state(&old)?, user)];
    recorded.extend(moved_events(&before, &after, user)?);
    events::record(&mut tx, recorded).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/stages/reorder/`: 200 with the type's full ordered list (a bare array).
pub(crate) async fn reorder(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Vec<StageOutput>>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Stage)?;
    let body = object(body)?;
    let (of_type, moves) = reorder_input(&body)?;
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    lock_type(&mut tx, of_type, "application_type_id").await?;
    let before = list_stages(&mut tx, Some(of_type)).await?;
    let current: Vec<i64> = before.iter().map(|s| s.id).collect();
    let order = reordered(&current, &moves)?;
    apply_order(&mut tx, &order, user).await?;
    let after = list_stages(&mut tx, Some(of_type)).await?;
    let recorded = moved_events(&before, &after, user)?;
    events::record(&mut tx, recorded).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(after))
}

// ----- logic -------------------------------------------------------------------------------

/// The reorder body: the type and `(stage_id, new_position)` pairs.
fn reorder_input(body: &Map<String, Value>) -> Result<(i64, Vec<(i64, i64)>), ApiError> {
    let mut errors = FieldErrors::default();
    let of_type = required_id(body, "application_type_id", true, &mut errors);
    let mut moves = Vec::new();
    match body.get("stages") {
        Some(Value::Array(items)) => {
            for item in items {
                let pair = item.as_object().and_then(|o| {
                    let id = o.get("stage_id")?.as_i64().filter(|v| *v > 0)?;
                    let at = o.get("new_position")?.as_i64().filter(|v| *v > 0)?;
                    Some((id, at))
                });
                match pair {
                    Some(pair) => moves.push(pair),
                    None => {
                        errors.add(
                            "stages",
                            "Each item needs a positive integer stage_id and new_position.",
                        );
                        break;
                    }
                }
            }
        }
        Some(_) => errors.add("stages", "Expected a list of {stage_id, new_position}."),
        None => errors.add("stages", "This field is required."),
    }
    errors.finish()?;
    let of_type =
        of_type.ok_or_else(|| ApiError::field("application_type_id", "This field is required."))?;
    Ok((of_type, moves))
}

/// The stage ids in their new order: each moved stage at its new position (1-based), the
/// others in their `current` relative order in the remaining slots. A 400 when a moved stage
/// is not one of `current`, is listed twice, or two stages ask for one position or a position
/// beyond the number of stages.
fn reordered(current: &[i64], moves: &[(i64, i64)]) -> Result<Vec<i64>, ApiError> {
    let n = current.len();
    let mut slots: Vec<Option<i64>> = vec![None; n];
    let mut seen = HashSet::new();
    for &(id, at) in moves {
        if !current.contains(&id) {
            return Err(ApiError::field(
                "stages",
                format!("Stage {id} does not belong to this application type."),
            ));
        }
        if !seen.insert(id) {
            return Err(ApiError::field(
                "stages",
                format!("Stage {id} is listed more than once."),
            ));
        }
        let slot = usize::try_from(at - 1)
            .ok()
            .filter(|s| *s < n)
            .ok_or_else(|| {
                ApiError::field("stages", format!("Position {at} is outside 1..{n}."))
            })?;
        if slots[slot].is_some() {
            return Err(ApiError::field(
                "stages",
                format!("Position {at} is given to more than one stage."),
            ));
        }
        slots[slot] = Some(id);
    }
    let mut rest = current.iter().filter(|id| !seen.contains(*id));
    Ok(slots
        .into_iter()
        .filter_map(|slot| slot.or_else(|| rest.next().copied()))
        .collect())
}

/// One `Stage.UPDATE` naming `position` for each stage whose position changed between the
/// two lists.
fn moved_events(
    before: &[StageOutput],
    after: &[StageOutput],
    actor: i64,
) -> Result<Vec<NewEvent>, ApiError> {
    let mut out = Vec::new();
    for new in after {
        if let Some(old) = before.iter().find(|s| s.id == new.id) {
            if old.position != new.position {
                out.push(events::updated_fields(
                    ENTITY,
                    new.id,
                    events::state(old)?,
                    events::state(new)?,
                    &["position"],
                    actor,
                ));
            }
        }
    }
    Ok(out)
}

// ----- data --------------------------------------------------------------------------------

/// The stages of live types (of `of_type` only, when given), by type and position.
async fn list_stages(
    conn: &mut PgConnection,
    of_type: Option<i64>,
) -> Result<Vec<StageOutput>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "{STAGE_SELECT} WHERE $1::bigint IS NULL OR s.application_type_id = $1
          ORDER BY s.application_type_id, s.position"
    ))
    .bind(of_type)
    .fetch_all(&mut *conn)
    .await?)
}

/// One stage of a live type.
async fn fetch_stage(conn: &mut PgConnection, id: i64) -> Result<Option<StageOutput>, ApiError> {
    Ok(sqlx::query_as(&format!("{STAGE_SELECT} WHERE s.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The type of stage `id`.
async fn type_of(conn: &mut PgConnection, id: i64) -> Result<Option<i64>, ApiError> {
    Ok(
        sqlx::query_scalar("SELECT application_type_id FROM stages WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Locks live application type `id` against other stage writes (not against applications
/// referring to it); a 400 on `field` when there is no such live type, a 404 when `field` is
/// the path's `id`.
async fn lock_type(conn: &mut PgConnection, id: i64, field: &str) -> Result<(), ApiError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM application_types WHERE id = $1 AND deleted_at IS NULL
            FOR NO KEY UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(_) => Ok(()),
        None if field == "id" => Err(not_found()),
        None => Err(ApiError::field(
            field,
            format!("Invalid pk \"{id}\" - object does not exist."),
        )),
    }
}

/// Inserts a stage of (locked) type `of_type`, which has `count` stages, at `at` (clamped to
/// n + 1; `None` appends), shifting the stages at and after it; returns its id.
async fn insert_stage(
    conn: &mut PgConnection,
    of_type: i64,
    count: usize,
    (name, description): (&str, &str),
    at: Option<i64>,
    user: i64,
) -> Result<i64, ApiError> {
    let count = i64::try_from(count).unwrap_or(i64::MAX - 1);
    let at = at.map_or(count + 1, |p| p.min(count + 1));
    let at = i32::try_from(at).map_err(|_| ApiError::field("position", "Too many stages."))?;
    sqlx::query(
        "UPDATE stages SET position = position + 1, updated_at = now()
          WHERE application_type_id = $1 AND position >= $2",
    )
    .bind(of_type)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO stages (application_type_id, stage_name, position, description,
                             created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(of_type)
    .bind(name)
    .bind(at)
    .bind(description)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// Deletes stage `id` of `stages` (its locked type's list) and closes the gap: a 400 while
/// live applications are in it; soft-deleted ones move to the first remaining stage.
async fn remove_stage(
    conn: &mut PgConnection,
    stages: &[StageOutput],
    id: i64,
) -> Result<(), ApiError> {
    // The row lock keeps new applications (their foreign key check) out until we are done.
    sqlx::query("SELECT 1 FROM stages WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let (live, gone): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL)
           FROM college_applications WHERE stage_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    if live > 0 {
        return Err(ApiError::BadRequest(format!(
            "Cannot delete a stage that holds {live} application(s); move them first."
        )));
    }
    if gone > 0 {
        let Some(target) = stages.iter().find(|s| s.id != id) else {
            return Err(ApiError::BadRequest(
                "Cannot delete the only stage of a type with deleted applications.".into(),
            ));
        };
        sqlx::query("UPDATE college_applications SET stage_id = $2 WHERE stage_id = $1")
            .bind(id)
            .bind(target.id)
            .execute(&mut *conn)
            .await?;
    }
    let position = stages
        .iter()
        .find(|s| s.id == id)
        .map_or(i32::MAX, |s| s.position);
    let of_type = stages.first().map_or(0, |s| s.application_type);
    sqlx::query("DELETE FROM stages WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE stages SET position = position - 1, updated_at = now()
          WHERE application_type_id = $1 AND position > $2",
    )
    .bind(of_type)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives the stages `order` (all of one locked type) positions 1..n in one statement.
async fn apply_order(conn: &mut PgConnection, order: &[i64], user: i64) -> Result<(), ApiError> {
    let positions: Vec<i32> = (1..=order.len())
        .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(
        "UPDATE stages s SET position = v.position, updated_by_id = $3, updated_at = now()
           FROM unnest($1::bigint[], $2::int[]) AS v(id, position)
          WHERE s.id = v.id AND s.position <> v.position",
    )
    .bind(order)
    .bind(&positions)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_stages_take_their_slots_and_the_others_keep_their_order() {
        let current = [10, 20, 30, 40];
        assert_eq!(
            reordered(&current, &[(40, 1)]).ok(),
            Some(vec![40, 10, 20, 30])
        );
        assert_eq!(
            reordered(&current, &[(10, 4), (20, 3)]).ok(),
            Some(vec![30, 40, 20, 10])
        );
        assert_eq!(reordered(&current, &[]).ok(), Some(current.to_vec()));
    }

    #[test]
    fn a_foreign_stage_a_duplicate_or_a_position_out_of_range_is_refused() {
        let current = [1, 2, 3];
        assert!(reordered(&current, &[(9, 1)]).is_err());
        assert!(reordered(&current, &[(1, 2), (1, 3)]).is_err());
        assert!(reordered(&current, &[(1, 2), (3, 2)]).is_err());
        assert!(reordered(&current, &[(1, 4)]).is_err());
    }
}
