//! Relations (spec: the REST relation routes): set, add and delete the
//! children of a parent row's relation column, load them with paging, and
//! embed them in found rows (`loadRelations`, `relationsDepth`).
//!
//! Storage: a relation column is declared (`[[emulator.relations]]`, or on
//! first use as `column:Child:1` / `column:Child:n`) in `relation_columns`;
//! each link is a row of `relations` (parent, column, child, position).
//!
//! Permissions (a guess, see docs/emulator.md): changing a relation needs
//! update permission on the parent row (with the owner policy) and find
//! permission on the child table; loading one needs find permission on the
//! parent row and on the child table. Relations fire no events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use rusqlite::Connection;
use serde_json::Value;

use super::operation::check_row;
use super::query::{RelationLoad, parse_query, query_of_uri, rows_value};
use super::{id_of, table_of};
use crate::emulator::auth::Requester;
use crate::emulator::config::Operation;
use crate::emulator::error::ApiError;
use crate::emulator::store::{self, Object, RelationColumn};
use crate::emulator::where_clause::{SqlCondition, compile, is_identifier};
use crate::emulator::{AppState, PathParams, Reply, Shared, json_body, kind_of, query_map};

/// How a relation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Replace the children (`POST`).
    Set,
    /// Add children (`PUT`).
    Add,
    /// Remove children (`DELETE`).
    Delete,
}

/// The children a change names: by id, or every child row matching a where
/// clause.
#[derive(Debug, Clone)]
pub(super) enum Children {
    Ids(Vec<String>),
    Where(Option<SqlCondition>),
}

/// Reads `column` or `column:Child:1|n`; the second form declares the column
/// when it is new.
fn relation_of(conn: &Connection, table: &str, spec: &str) -> Result<RelationColumn, ApiError> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [column] if is_identifier(column) => store::relation_column(conn, table, column)?
            .ok_or_else(|| {
                ApiError::relation(format!(
                    "{table}.{column} is not a relation column: declare it in [[emulator.relations]] \
                     or name it as `{column}:ChildTable:1` (or `:n`) on first use"
                ))
            }),
        [column, child, card] if is_identifier(column) && is_identifier(child) => {
            let many = match card.to_ascii_lowercase().as_str() {
                "1" => false,
                "n" => true,
                _ => {
                    return Err(ApiError::relation(format!(
                        "the cardinality in `{spec}` must be 1 or n"
                    )))
                }
            };
            store::declare_relation(conn, table, column, child, many)?;
            Ok(RelationColumn {
                column: (*column).to_owned(),
                child: (*child).to_owned(),
                many,
            })
        }
        _ => Err(ApiError::parse(format!(
            "`{spec}` is not a relation column name"
        ))),
    }
}

/// Applies `change` to `table`/`parent_id`'s relation `spec` as `caller`,
/// on `conn` (inside the caller's transaction). The number of children set,
/// added or removed: children that do not exist are ignored, as are children
/// already related (add) or not related (delete).
#[expect(
    clippy::too_many_arguments,
    reason = "one relation change has this many parts"
)]
pub(super) fn change_relation(
    conn: &Connection,
    st: &AppState,
    caller: &Requester,
    table: &str,
    parent_id: &str,
    spec: &str,
    children: Children,
    change: Change,
) -> Result<usize, ApiError> {
    let rel = relation_of(conn, table, spec)?;
    let parent = store::get(conn, table, parent_id)?.ok_or_else(ApiError::not_found)?;
    check_row(st, caller, table, Operation::Update, &parent)?;
    st.permissions.check(
        &rel.child,
        Operation::Find,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    let wanted = match children {
        Children::Ids(ids) => {
            let mut existing = Vec::with_capacity(ids.len());
            for id in ids {
                if !existing.contains(&id) && store::get(conn, &rel.child, &id)?.is_some() {
                    existing.push(id);
                }
            }
            existing
        }
        Children::Where(condition) => store::matching_ids(conn, &rel.child, condition.as_ref())?,
    };
    let current = store::related_ids(conn, table, parent_id, &rel.column)?;
    match change {
        Change::Set => {
            if !rel.many && wanted.len() > 1 {
                return Err(ApiError::relation(format!(
                    "{table}.{} is a 1:1 relation; {} children were given",
                    rel.column,
                    wanted.len()
                )));
            }
            for id in current.iter().filter(|id| !wanted.contains(id)) {
                store::unlink(conn, table, parent_id, &rel.column, id)?;
            }
            for id in &wanted {
                store::link(conn, table, parent_id, &rel, id)?;
            }
            Ok(wanted.len())
        }
        Change::Add => {
            let new: Vec<&String> = wanted.iter().filter(|id| !current.contains(id)).collect();
            if !rel.many && current.len() + new.len() > 1 {
                return Err(ApiError::relation(format!(
                    "{table}.{} is a 1:1 relation and would hold {} children; use set to replace it",
                    rel.column,
                    current.len() + new.len()
                )));
            }
            for id in &new {
                store::link(conn, table, parent_id, &rel, id)?;
            }
            Ok(new.len())
        }
        Change::Delete => {
            let mut removed = 0;
            for id in &wanted {
                removed += usize::from(store::unlink(conn, table, parent_id, &rel.column, id)?);
            }
            Ok(removed)
        }
    }
}

/// The most related rows one request may embed (a bound of the emulator's
/// own: `relationsDepth` 10 with 100 children a level would be 100^10).
pub(crate) const MAX_EMBEDDED_ROWS: usize = 10_000;

/// Embeds the relations `load` asks for in `rows` of `table` (level 1), and
/// below them down to `load.depth`. A relation to a table the caller may not
/// find in is left out (a guess). More than [`MAX_EMBEDDED_ROWS`] related
/// rows in all is an error (code 0) rather than a cut.
pub(super) fn embed(
    conn: &Connection,
    st: &AppState,
    caller: &Requester,
    table: &str,
    rows: &mut [Object],
    load: &RelationLoad,
) -> Result<(), ApiError> {
    let mut budget = MAX_EMBEDDED_ROWS;
    embed_level(conn, st, caller, table, rows, load, 1, &mut budget)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one level of a recursive walk carries the request's parts"
)]
fn embed_level(
    conn: &Connection,
    st: &AppState,
    caller: &Requester,
    table: &str,
    rows: &mut [Object],
    load: &RelationLoad,
    level: u32,
    budget: &mut usize,
) -> Result<(), ApiError> {
    if rows.is_empty() {
        return Ok(());
    }
    for rel in store::relation_columns(conn, table)? {
        let first = level == 1 && (load.all || load.names.contains(&rel.column));
        if !(first || level <= load.depth) {
            continue;
        }
        if !st.permissions.allows(
            &rel.child,
            Operation::Find,
            &caller.roles,
            caller.user_id(),
            None,
        ) {
            continue;
        }
        let page = store::FindQuery {
            page_size: load.page_size,
            ..store::FindQuery::default()
        };
        for row in rows.iter_mut() {
            let Some(id) = row
                .get("objectId")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            let mut children = store::find_related(conn, table, &id, &rel, &page)?;
            *budget = budget.checked_sub(children.len()).ok_or_else(|| {
                ApiError::new(
                    0,
                    format!(
                        "the relations asked for hold more than {MAX_EMBEDDED_ROWS} rows; \
                         lower relationsDepth or relationsPageSize"
                    ),
                )
            })?;
            if level < load.depth {
                embed_level(
                    conn,
                    st,
                    caller,
                    &rel.child,
                    &mut children,
                    load,
                    level + 1,
                    budget,
                )?;
            }
            let value = if rel.many {
                Value::Array(children.into_iter().map(Value::Object).collect())
            } else {
                children
                    .into_iter()
                    .next()
                    .map_or(Value::Null, Value::Object)
            };
            row.insert(rel.column.clone(), value);
        }
    }
    Ok(())
}

/// GET /data/{table}/{id}/{relation}?pageSize=&offset=&where=&sortBy=&props=
/// -> the children, a page at a time.
pub(crate) async fn load(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Reply {
    let table = table_of(&p)?;
    let id = id_of(&p);
    let column = p.get("relation").cloned().unwrap_or_default();
    let query = parse_query(&query_of_uri(&uri))?;
    let st2 = st.clone();
    let rows = st
        .store
        .call(move |c| {
            let rel = store::relation_column(c, &table, &column)?.ok_or_else(|| {
                ApiError::relation(format!("{table}.{column} is not a relation column"))
            })?;
            let parent = store::get(c, &table, &id)?.ok_or_else(ApiError::not_found)?;
            check_row(&st2, &caller, &table, Operation::Find, &parent)?;
            st2.permissions.check(
                &rel.child,
                Operation::Find,
                &caller.roles,
                caller.user_id(),
                None,
            )?;
            let mut rows = store::find_related(c, &table, &id, &rel, &query.find)?;
            if query.relations.any() {
                embed(c, &st2, &caller, &rel.child, &mut rows, &query.relations)?;
            }
            Ok::<_, ApiError>(rows)
        })
        .await?;
    Ok(Json(rows_value(rows)))
}

/// The children of a change request: a JSON array of ids (or objects with an
/// `objectId`) in the body, or `?whereClause=` (`?where=` too).
fn children_of(uri: &Uri, body: &[u8]) -> Result<Children, ApiError> {
    let query = query_map(uri);
    if let Some(clause) = query.get("whereClause").or_else(|| query.get("where")) {
        return Ok(Children::Where(compile(clause)?));
    }
    match json_body(body)? {
        Value::Array(items) => items
            .iter()
            .map(|item| child_id(item).ok_or_else(|| bad_child(item)))
            .collect::<Result<Vec<_>, _>>()
            .map(Children::Ids),
        other => Err(ApiError::parse(format!(
            "the children must be a JSON array of objectIds or a whereClause, got {}",
            kind_of(&other)
        ))),
    }
}

/// An id given as a string or as an object with a string `objectId`.
pub(super) fn child_id(item: &Value) -> Option<String> {
    match item {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o
            .get("objectId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

pub(super) fn bad_child(item: &Value) -> ApiError {
    ApiError::parse(format!(
        "a child must be an objectId or an object with one, got {}",
        kind_of(item)
    ))
}

async fn change(
    st: Shared,
    caller: Requester,
    p: PathParams,
    uri: Uri,
    body: Bytes,
    how: Change,
) -> Reply {
    let Path(p) = p;
    let table = table_of(&p)?;
    let id = id_of(&p);
    let spec = p.get("relation").cloned().unwrap_or_default();
    let children = children_of(&uri, &body)?;
    let st2 = st.clone();
    let n = st
        .store
        .call(move |c| {
            store::transaction(c, |tx| {
                change_relation(tx, &st2, &caller, &table, &id, &spec, children, how)
            })
        })
        .await?;
    Ok(Json(Value::from(n)))
}

/// POST /data/{table}/{id}/{relation}: set the children -> how many.
pub(crate) async fn set(
    State(st): State<Shared>,
    caller: Requester,
    p: PathParams,
    uri: Uri,
    body: Bytes,
) -> Reply {
    change(st, caller, p, uri, body, Change::Set).await
}

/// PUT /data/{table}/{id}/{relation}: add children -> how many were added.
pub(crate) async fn add(
    State(st): State<Shared>,
    caller: Requester,
    p: PathParams,
    uri: Uri,
    body: Bytes,
) -> Reply {
    change(st, caller, p, uri, body, Change::Add).await
}

/// DELETE /data/{table}/{id}/{relation}: remove children -> how many were removed.
pub(crate) async fn delete(
    State(st): State<Shared>,
    caller: Requester,
    p: PathParams,
    uri: Uri,
    body: Bytes,
) -> Reply {
    change(st, caller, p, uri, body, Change::Delete).await
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    use super::super::super::test_call as call;
    use super::super::super::{Emulator, EmulatorConfig};
    use super::*;

    #[tokio::test]
    async fn embedding_is_bounded_across_levels() {
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        // 100 nodes each related to all 100 (`Node.kids`, 1:N), and a root
        // related to all of them: depth 2 embeds 100 + 100 * 100 rows.
        emu.state.store.call_sync(|c| {
            store::declare_relation(c, "Node", "kids", "Node", true).unwrap();
            let rel = store::relation_column(c, "Node", "kids").unwrap().unwrap();
            let mut ids = Vec::new();
            for i in 0..101 {
                let mut o = Object::new();
                o.insert("objectId".into(), json!(format!("N{i}")));
                ids.push(store::insert(c, "Node", o, None).unwrap()["objectId"].clone());
            }
            for parent in &ids {
                for child in &ids[1..] {
                    store::link(
                        c,
                        "Node",
                        parent.as_str().unwrap(),
                        &rel,
                        child.as_str().unwrap(),
                    )
                    .unwrap();
                }
            }
        });
        let path = |depth: u32| {
            format!(
                "/dev-app/dev-rest-key/data/Node/N0?relationsDepth={depth}&relationsPageSize=100"
            )
        };
        let (status, one) = call(&emu, Method::GET, &path(1), None, "").await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert_eq!(one["kids"].as_array().unwrap().len(), 100);
        let (status, err) = call(&emu, Method::GET, &path(2), None, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["message"].as_str().unwrap().contains("10000"), "{err}");
    }
}
