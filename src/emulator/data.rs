//! Data routes (spec §4.2): create, update, find by id, find, count, remove,
//! and the bulk operations, with table permissions and persistence events.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::event::{persistence, user, EventId};

use super::auth::Caller;
use super::config::{KeyKind, Operation};
use super::dispatch::Before;
use super::error::ApiError;
use super::store::{self, FindQuery, Object};
use super::where_clause::{compile, is_identifier};
use super::{json_body, json_object, kind_of, query_map, AppState, Shared};

type Params = Path<HashMap<String, String>>;
type Reply = Result<Json<Value>, ApiError>;

fn table_of(p: &HashMap<String, String>) -> Result<String, ApiError> {
    let t = p.get("table").cloned().unwrap_or_default();
    if is_identifier(&t) {
        Ok(t)
    } else {
        Err(ApiError::parse(format!("`{t}` is not a valid table name")))
    }
}

fn id_of(p: &HashMap<String, String>) -> String {
    p.get("id").cloned().unwrap_or_default()
}

fn as_object(v: Value, what: &str) -> Result<Object, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::new(
            0,
            format!("business logic changed the {what} into {}", kind_of(&other)),
        )),
    }
}

/// The request body as a JSON array (bulk routes).
fn array_body(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    match json_body(body)? {
        Value::Array(items) => Ok(items),
        other => Err(ApiError::parse(format!(
            "expected an array, got {}",
            kind_of(&other)
        ))),
    }
}

/// The items of a bulk route as a before-handler left them.
fn changed_items(items: &Value) -> Result<Vec<Object>, ApiError> {
    match items {
        Value::Array(items) => items
            .iter()
            .map(|i| as_object(i.clone(), "items"))
            .collect(),
        other => Err(ApiError::parse(format!(
            "expected an array, got {}",
            kind_of(other)
        ))),
    }
}

/// Runs a before-handler: `Ok(Ok(args))` to go on, `Ok(Err(v))` to return `v` at once.
async fn before(
    st: &Shared,
    caller: &Caller,
    event: EventId,
    target: &str,
    args: Vec<Value>,
) -> Result<Result<Vec<Value>, Value>, ApiError> {
    Ok(
        match st.dispatcher.before(caller, event, target, args).await? {
            Before::Continue(a) => Ok(a),
            Before::Premature(v) => Err(v),
        },
    )
}

/// POST /data/{table}
pub(crate) async fn create(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let item = json_object(&body)?;
    create_object(&st, &caller, &table, item).await.map(Json)
}

/// PUT /data/{table}: the SDK's save, an update when the body's objectId exists.
pub(crate) async fn save(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let item = json_object(&body)?;
    if let Some(Value::String(id)) = item.get("objectId") {
        let (t, i) = (table.clone(), id.clone());
        if st
            .store
            .call(move |c| store::get(c, &t, &i))
            .await?
            .is_some()
        {
            return update_object(&st, &caller, &table, id.clone(), item)
                .await
                .map(Json);
        }
    }
    create_object(&st, &caller, &table, item).await.map(Json)
}

/// PUT /data/{table}/upsert: the SDK's `save(obj, true)`. Updates the object
/// when the body's objectId exists (update permission, owner policy), else
/// creates it (create permission; a client-chosen objectId is kept). Fires
/// beforeUpsert/afterUpsert, not the create/update events.
pub(crate) async fn upsert(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    no_user_upsert(&table)?;
    let item = json_object(&body)?;
    check_upsert(&st, &caller, &table, &item).await?;
    let args = match before(
        &st,
        &caller,
        persistence::BEFORE_UPSERT,
        &table,
        vec![Value::Object(item)],
    )
    .await?
    {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let item = as_object(args[0].clone(), "item")?;
    let owner = caller.user_id().map(str::to_owned);
    let t = table.clone();
    let saved = st
        .store
        .call(move |c| upsert_one(c, &t, item, owner.as_deref()))
        .await?;
    st.dispatcher
        .after(
            &caller,
            persistence::AFTER_UPSERT,
            &table,
            args,
            Value::Object(saved),
        )
        .await
        .map(Json)
}

/// PUT /data/bulkupsert/{table} (array) -> the objectIds, in order; one
/// transaction; beforeUpsertBulk/afterUpsertBulk.
pub(crate) async fn bulk_upsert(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    no_user_upsert(&table)?;
    let items = array_body(&body)?;
    for item in &items {
        let Value::Object(item) = item else {
            return Err(ApiError::parse("every item must be a JSON object"));
        };
        check_upsert(&st, &caller, &table, item).await?;
    }
    let args = match before(
        &st,
        &caller,
        persistence::BEFORE_UPSERT_BULK,
        &table,
        vec![Value::Array(items)],
    )
    .await?
    {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let items: Vec<Object> = changed_items(&args[0])?;
    let owner = caller.user_id().map(str::to_owned);
    let t = table.clone();
    let ids = st
        .store
        .call(move |c| {
            let tx = c.transaction()?;
            let mut ids = Vec::new();
            for item in items {
                let saved = upsert_one(&tx, &t, item, owner.as_deref())?;
                ids.push(saved["objectId"].clone());
            }
            tx.commit()?;
            Ok(ids)
        })
        .await?;
    st.dispatcher
        .after(
            &caller,
            persistence::AFTER_UPSERT_BULK,
            &table,
            args,
            Value::Array(ids),
        )
        .await
        .map(Json)
}

fn no_user_upsert(table: &str) -> Result<(), ApiError> {
    if table == "Users" {
        return Err(ApiError::new(
            0,
            "upsert of users is not supported; use users/register or PUT users/{id}",
        ));
    }
    Ok(())
}

/// Update permission on an existing object, create permission otherwise.
async fn check_upsert(
    st: &Shared,
    caller: &Caller,
    table: &str,
    item: &Object,
) -> Result<(), ApiError> {
    if let Some(Value::String(id)) = item.get("objectId") {
        let (t, i) = (table.to_owned(), id.clone());
        if st
            .store
            .call(move |c| store::get(c, &t, &i))
            .await?
            .is_some()
        {
            load_checked(st, caller, table, id, Operation::Update).await?;
            return Ok(());
        }
    }
    st.permissions.check(
        table,
        Operation::Create,
        &caller.roles,
        caller.user_id(),
        None,
    )
}

fn upsert_one(
    c: &rusqlite::Connection,
    table: &str,
    item: Object,
    owner: Option<&str>,
) -> Result<Object, ApiError> {
    let existing = match item.get("objectId") {
        Some(Value::String(id)) => store::get(c, table, id)?,
        _ => None,
    };
    match existing {
        Some(existing) => store::update(c, table, existing, item),
        None => store::insert(c, table, item, owner),
    }
}

pub(crate) async fn create_object(
    st: &Shared,
    caller: &Caller,
    table: &str,
    item: Object,
) -> Result<Value, ApiError> {
    if table == "Users" {
        return super::users::register_user(st, caller, item).await;
    }
    st.permissions.check(
        table,
        Operation::Create,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    let args = match before(
        st,
        caller,
        persistence::BEFORE_CREATE,
        table,
        vec![Value::Object(item)],
    )
    .await?
    {
        Ok(a) => a,
        Err(premature) => return Ok(premature),
    };
    let item = as_object(args[0].clone(), "item")?;
    let owner = caller.user_id().map(str::to_owned);
    let t = table.to_owned();
    let saved = st
        .store
        .call(move |c| store::insert(c, &t, item, owner.as_deref()))
        .await?;
    st.dispatcher
        .after(
            caller,
            persistence::AFTER_CREATE,
            table,
            args,
            Value::Object(saved),
        )
        .await
}

/// Loads a row and checks `op` on it (see [`check_row`]); 1000 if missing.
async fn load_checked(
    st: &Shared,
    caller: &Caller,
    table: &str,
    id: &str,
    op: Operation,
) -> Result<Object, ApiError> {
    let (t, i) = (table.to_owned(), id.to_owned());
    let row = st
        .store
        .call(move |c| store::get(c, &t, &i))
        .await?
        .ok_or_else(ApiError::not_found)?;
    check_row(st, caller, table, op, &row)?;
    Ok(row)
}

/// The per-row rule, the same for one row and for each row of a bulk
/// operation: the table permissions with the owner policy, and a user may be
/// changed or removed only by that user or by business logic.
fn check_row(
    st: &AppState,
    caller: &Caller,
    table: &str,
    op: Operation,
    row: &Object,
) -> Result<(), ApiError> {
    let owner = row.get("ownerId").and_then(Value::as_str);
    st.permissions
        .check(table, op, &caller.roles, caller.user_id(), Some(owner))?;
    let id = row.get("objectId").and_then(Value::as_str);
    if table == store::USERS
        && matches!(op, Operation::Update | Operation::Remove)
        && caller.key_kind != KeyKind::CloudCode
        && (caller.user_id().is_none() || caller.user_id() != id)
    {
        return Err(op.denied());
    }
    Ok(())
}

/// PUT /data/{table}/{id}
pub(crate) async fn update(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let changes = json_object(&body)?;
    update_object(&st, &caller, &table, id_of(&p), changes)
        .await
        .map(Json)
}

pub(crate) async fn update_object(
    st: &Shared,
    caller: &Caller,
    table: &str,
    id: String,
    mut changes: Object,
) -> Result<Value, ApiError> {
    load_checked(st, caller, table, &id, Operation::Update).await?;
    changes.insert("objectId".into(), Value::String(id.clone()));
    let (before_id, after_id) = if table == "Users" {
        (user::BEFORE_UPDATE, user::AFTER_UPDATE)
    } else {
        (persistence::BEFORE_UPDATE, persistence::AFTER_UPDATE)
    };
    let target = if table == "Users" { "*" } else { table };
    let args = match before(st, caller, before_id, target, vec![Value::Object(changes)]).await? {
        Ok(a) => a,
        Err(premature) => return Ok(premature),
    };
    let changes = as_object(args[0].clone(), "item")?;
    let t = table.to_owned();
    let saved = st
        .store
        .call(move |c| {
            let tx = c.transaction()?;
            let existing = store::get(&tx, &t, &id)?.ok_or_else(ApiError::not_found)?;
            let saved = store::update(&tx, &t, existing, changes)?;
            tx.commit()?;
            Ok(saved)
        })
        .await?;
    st.dispatcher
        .after(caller, after_id, target, args, Value::Object(saved))
        .await
}

/// GET /data/{table}/{id}
pub(crate) async fn find_by_id(State(st): State<Shared>, caller: Caller, Path(p): Params) -> Reply {
    let table = table_of(&p)?;
    let id = id_of(&p);
    let (b, a, target) = if table == "Users" {
        (user::BEFORE_FIND_BY_ID, user::AFTER_FIND_BY_ID, "*")
    } else {
        (
            persistence::BEFORE_FIND_BY_ID,
            persistence::AFTER_FIND_BY_ID,
            table.as_str(),
        )
    };
    let row = load_checked(&st, &caller, &table, &id, Operation::Find).await?;
    let args = vec![Value::String(id.clone()), json!([])];
    let args = match before(&st, &caller, b, target, args).await? {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let row = match args[0].as_str() {
        Some(new_id) if new_id != id => {
            load_checked(&st, &caller, &table, new_id, Operation::Find).await?
        }
        _ => row,
    };
    st.dispatcher
        .after(&caller, a, target, args, Value::Object(row))
        .await
        .map(Json)
}

/// DELETE /data/{table}/{id}
pub(crate) async fn remove(State(st): State<Shared>, caller: Caller, Path(p): Params) -> Reply {
    let table = table_of(&p)?;
    let id = id_of(&p);
    load_checked(&st, &caller, &table, &id, Operation::Remove).await?;
    let (before_id, after_id, target) = if table == "Users" {
        (user::BEFORE_REMOVE, user::AFTER_REMOVE, "*")
    } else {
        (
            persistence::BEFORE_REMOVE,
            persistence::AFTER_REMOVE,
            table.as_str(),
        )
    };
    let args = match before(&st, &caller, before_id, target, vec![Value::String(id)]).await? {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let id = args[0].as_str().unwrap_or_default().to_owned();
    let (t, i) = (table.clone(), id.clone());
    if !st.store.call(move |c| store::delete(c, &t, &i)).await? {
        return Err(ApiError::not_found());
    }
    if table == store::USERS {
        st.sessions.close_user(&id);
    }
    let result = json!({"deletionTime": store::now_ms()});
    st.dispatcher
        .after(&caller, after_id, target, args, result)
        .await
        .map(Json)
}

/// The query of find and count, in the shape sent to handlers.
fn query_json(raw: &Map<String, Value>) -> Value {
    let list = |v: Option<&Value>| -> Value {
        match v {
            Some(Value::String(s)) => Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            Some(Value::Array(a)) => Value::Array(a.clone()),
            _ => json!([]),
        }
    };
    json!({
        "whereClause": raw.get("where").or_else(|| raw.get("whereClause")).cloned().unwrap_or(Value::Null),
        "pageSize": raw.get("pageSize").cloned().unwrap_or(Value::Null),
        "offset": raw.get("offset").cloned().unwrap_or(Value::Null),
        "sortBy": list(raw.get("sortBy")),
        "properties": list(raw.get("props").or_else(|| raw.get("properties"))),
    })
}

fn number(v: &Value, name: &str, default: i64) -> Result<i64, ApiError> {
    match v {
        Value::Null => Ok(default),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ApiError::parse(format!("{name} must be an integer"))),
        Value::String(s) if s.trim().is_empty() => Ok(default),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::parse(format!("{name} must be an integer"))),
        _ => Err(ApiError::parse(format!("{name} must be an integer"))),
    }
}

/// Validates a query (in [`query_json`]'s shape) into a [`FindQuery`] and the props.
fn parse_query(q: &Value) -> Result<(FindQuery, Vec<String>), ApiError> {
    let clause = match &q["whereClause"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => {
            return Err(ApiError::invalid_where(format!(
                "expected a string, got {}",
                kind_of(other)
            )))
        }
    };
    let page_size = number(&q["pageSize"], "pageSize", 10)?;
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::parse("pageSize must be between 1 and 100"));
    }
    let offset = number(&q["offset"], "offset", 0)?;
    if offset < 0 {
        return Err(ApiError::parse("offset must not be negative"));
    }
    let mut sort = Vec::new();
    for s in q["sortBy"].as_array().into_iter().flatten() {
        let s = s.as_str().unwrap_or_default().trim();
        let mut words = s.split_whitespace();
        let name = words.next().unwrap_or_default();
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(ApiError::parse(format!("invalid sortBy `{s}`"))),
        };
        if !is_identifier(name) || words.next().is_some() {
            return Err(ApiError::parse(format!("invalid sortBy `{s}`")));
        }
        sort.push((name.to_owned(), desc));
    }
    let mut props = Vec::new();
    for p in q["properties"].as_array().into_iter().flatten() {
        let p = p.as_str().unwrap_or_default().trim();
        if p == "*" {
            props.clear();
            break;
        }
        if !is_identifier(p) {
            return Err(ApiError::parse(format!("invalid property `{p}` in props")));
        }
        props.push(p.to_owned());
    }
    Ok((
        FindQuery {
            condition: compile(&clause)?,
            sort,
            page_size: page_size as u32,
            offset: offset as u64,
        },
        props,
    ))
}

fn project(rows: Vec<Object>, props: &[String]) -> Value {
    Value::Array(
        rows.into_iter()
            .map(|mut row| {
                if !props.is_empty() {
                    row.retain(|k, _| k == "___class" || k == "objectId" || props.contains(k));
                }
                Value::Object(row)
            })
            .collect(),
    )
}

fn query_from_uri(uri: &Uri) -> Map<String, Value> {
    query_map(uri)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// GET /data/{table}?where=&pageSize=&offset=&sortBy=&props=
pub(crate) async fn find_get(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    uri: Uri,
) -> Reply {
    let table = table_of(&p)?;
    find(&st, &caller, &table, query_json(&query_from_uri(&uri))).await
}

/// POST /data/{table}/find
pub(crate) async fn find_post(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    find(&st, &caller, &table, query_json(&json_object(&body)?)).await
}

async fn find(st: &Shared, caller: &Caller, table: &str, query: Value) -> Reply {
    st.permissions.check(
        table,
        Operation::Find,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    parse_query(&query)?;
    let (before_id, after_id, target) = if table == "Users" {
        (user::BEFORE_FIND, user::AFTER_FIND, "*")
    } else {
        (persistence::BEFORE_FIND, persistence::AFTER_FIND, table)
    };
    let args = match before(st, caller, before_id, target, vec![query]).await? {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let (q, props) = parse_query(&args[0])?;
    let t = table.to_owned();
    let rows = st.store.call(move |c| store::find(c, &t, &q)).await?;
    st.dispatcher
        .after(caller, after_id, target, args, project(rows, &props))
        .await
        .map(Json)
}

/// GET /data/{table}/count?where=
pub(crate) async fn count_get(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    uri: Uri,
) -> Reply {
    let table = table_of(&p)?;
    count(&st, &caller, &table, query_json(&query_from_uri(&uri))).await
}

/// POST /data/{table}/count {where}
pub(crate) async fn count_post(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    count(&st, &caller, &table, query_json(&json_object(&body)?)).await
}

async fn count(st: &Shared, caller: &Caller, table: &str, query: Value) -> Reply {
    st.permissions.check(
        table,
        Operation::Find,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    parse_query(&query)?;
    let args = match before(st, caller, persistence::BEFORE_COUNT, table, vec![query]).await? {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let (q, _) = parse_query(&args[0])?;
    let t = table.to_owned();
    let n = st
        .store
        .call(move |c| store::count(c, &t, q.condition.as_ref()))
        .await?;
    st.dispatcher
        .after(
            caller,
            persistence::AFTER_COUNT,
            table,
            args,
            Value::from(n),
        )
        .await
        .map(Json)
}

/// POST /data/bulk/{table} (array of objects) -> array of ids.
pub(crate) async fn bulk_create(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let items = array_body(&body)?;
    if table == "Users" {
        return Err(ApiError::new(
            0,
            "bulk creation of users is not supported; use users/register",
        ));
    }
    st.permissions.check(
        &table,
        Operation::Create,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    let args = match before(
        &st,
        &caller,
        persistence::BEFORE_CREATE_BULK,
        &table,
        vec![Value::Array(items)],
    )
    .await?
    {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let items: Vec<Object> = changed_items(&args[0])?;
    let owner = caller.user_id().map(str::to_owned);
    let t = table.clone();
    let ids = st
        .store
        .call(move |c| {
            let tx = c.transaction()?;
            let mut ids = Vec::new();
            for item in items {
                let saved = store::insert(&tx, &t, item, owner.as_deref())?;
                ids.push(saved["objectId"].clone());
            }
            tx.commit()?;
            Ok(ids)
        })
        .await?;
    st.dispatcher
        .after(
            &caller,
            persistence::AFTER_CREATE_BULK,
            &table,
            args,
            Value::Array(ids),
        )
        .await
        .map(Json)
}

/// PUT /data/bulk/{table}?where= (body = changes) -> count.
pub(crate) async fn bulk_update(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    uri: Uri,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let changes = json_object(&body)?;
    st.permissions.check(
        &table,
        Operation::Update,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    let clause = query_map(&uri).remove("where").unwrap_or_default();
    compile(&clause)?;
    let args = vec![
        Value::String(table.clone()),
        Value::String(clause),
        Value::Object(changes),
    ];
    let args = match before(&st, &caller, persistence::BEFORE_UPDATE_BULK, &table, args).await? {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let condition = compile(args[1].as_str().unwrap_or_default())?;
    let changes = as_object(args[2].clone(), "changes")?;
    let (t, shared, who) = (table.clone(), st.clone(), caller.clone());
    let n = st
        .store
        .call(move |c| {
            // One refused row refuses the whole operation (nothing is written).
            let tx = c.transaction()?;
            let ids = store::matching_ids(&tx, &t, condition.as_ref())?;
            for id in &ids {
                if let Some(row) = store::get(&tx, &t, id)? {
                    check_row(&shared, &who, &t, Operation::Update, &row)?;
                    store::update(&tx, &t, row, changes.clone())?;
                }
            }
            tx.commit()?;
            Ok(ids.len())
        })
        .await?;
    st.dispatcher
        .after(
            &caller,
            persistence::AFTER_UPDATE_BULK,
            &table,
            args,
            Value::from(n),
        )
        .await
        .map(Json)
}

async fn bulk_delete(st: &Shared, caller: &Caller, table: String, clause: &str) -> Reply {
    st.permissions.check(
        &table,
        Operation::Remove,
        &caller.roles,
        caller.user_id(),
        None,
    )?;
    compile(clause)?;
    let args = vec![
        Value::String(table.clone()),
        Value::String(clause.to_owned()),
    ];
    let args = match before(st, caller, persistence::BEFORE_REMOVE_BULK, &table, args).await? {
        Ok(a) => a,
        Err(premature) => return Ok(Json(premature)),
    };
    let condition = compile(args[1].as_str().unwrap_or_default())?;
    let (t, shared, who) = (table.clone(), st.clone(), caller.clone());
    let ids = st
        .store
        .call(move |c| {
            // One refused row refuses the whole operation (nothing is deleted).
            let tx = c.transaction()?;
            let ids = store::matching_ids(&tx, &t, condition.as_ref())?;
            for id in &ids {
                if let Some(row) = store::get(&tx, &t, id)? {
                    check_row(&shared, &who, &t, Operation::Remove, &row)?;
                    store::delete(&tx, &t, id)?;
                }
            }
            tx.commit()?;
            Ok(ids)
        })
        .await?;
    if table == store::USERS {
        for id in &ids {
            st.sessions.close_user(id);
        }
    }
    let n = ids.len();
    st.dispatcher
        .after(
            caller,
            persistence::AFTER_REMOVE_BULK,
            &table,
            args,
            Value::from(n),
        )
        .await
        .map(Json)
}

/// DELETE /data/bulk/{table}?where= -> count.
pub(crate) async fn bulk_delete_query(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    uri: Uri,
) -> Reply {
    let table = table_of(&p)?;
    let clause = query_map(&uri).remove("where").unwrap_or_default();
    bulk_delete(&st, &caller, table, &clause).await
}

/// POST /data/bulk/{table}/delete {where} -> count.
pub(crate) async fn bulk_delete_body(
    State(st): State<Shared>,
    caller: Caller,
    Path(p): Params,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let body = json_object(&body)?;
    let clause = match body.get("where") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ApiError::invalid_where(format!(
                "expected a string, got {}",
                kind_of(other)
            )))
        }
    };
    bulk_delete(&st, &caller, table, &clause).await
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use super::super::test_call as call;
    use super::super::{Emulator, EmulatorConfig};
    use super::*;

    async fn login(emu: &Emulator, email: &str, password: &str) -> (String, String) {
        let body = json!({"login": email, "password": password}).to_string();
        let (status, user) = call(
            emu,
            Method::POST,
            "/dev-app/dev-js-key/users/login",
            None,
            &body,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{user}");
        (
            user["user-token"].as_str().unwrap().to_owned(),
            user["objectId"].as_str().unwrap().to_owned(),
        )
    }

    #[tokio::test]
    async fn upsert_creates_then_updates_with_the_matching_permission() {
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        let (alice, alice_id) = login(&emu, "alice@example.com", "alice-pass").await;
        let (bob, _) = login(&emu, "bob@example.com", "bob-pass").await;
        let url = "/dev-app/dev-js-key/data/Post/upsert";

        // Anonymous: Post create is not granted -> 1011.
        let (status, err) = call(&emu, Method::PUT, url, None, r#"{"title": "anon"}"#).await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(1011))
        );

        // A client-chosen, unused objectId creates with that id.
        let body = r#"{"objectId": "MY-ID", "title": "t", "likes": 1}"#;
        let (status, created) = call(&emu, Method::PUT, url, Some(&alice), body).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert_eq!(created["objectId"], json!("MY-ID"));
        assert_eq!(created["ownerId"], json!(alice_id));
        assert_eq!(created["updated"], Value::Null);

        // The same id again updates (partially) and keeps the owner.
        let body = r#"{"objectId": "MY-ID", "likes": 2}"#;
        let (status, updated) = call(&emu, Method::PUT, url, Some(&bob), body).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(
            (updated["title"].clone(), updated["likes"].clone()),
            (json!("t"), json!(2))
        );
        assert_eq!(updated["ownerId"], json!(alice_id));
        assert!(updated["updated"].is_number(), "{updated}");

        // Audit_log: alice may neither create nor update there.
        let (_, err) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/data/Audit_log/upsert",
            Some(&alice),
            "{}",
        )
        .await;
        assert_eq!(err["code"], json!(1011));

        // Bulk: ids in order, one existing and one new.
        let body = r#"[{"objectId": "MY-ID", "likes": 3}, {"title": "second"}]"#;
        let (status, ids) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/data/bulkupsert/Post",
            Some(&alice),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{ids}");
        assert_eq!(ids[0], json!("MY-ID"));
        assert!(ids[1].is_string() && ids[1] != json!("MY-ID"), "{ids}");
        let (_, post) = call(
            &emu,
            Method::GET,
            "/dev-app/dev-js-key/data/Post/MY-ID",
            Some(&alice),
            "",
        )
        .await;
        assert_eq!(post["likes"], json!(3));
        let (status, err) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/data/bulkupsert/Post",
            None,
            r#"[{"title": "x"}]"#,
        )
        .await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(1011))
        );
        let (_, err) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/data/bulkupsert/Post",
            Some(&alice),
            r#"{"title": "x"}"#,
        )
        .await;
        assert_eq!(err["code"], json!(8002));
    }
}
