//! Data routes (spec §4.2): create, update, find by id, find, count, remove,
//! and the bulk operations, with table permissions and persistence events.
//! Each route reads its request and runs a [`DataOp`]: permission ->
//! before-handler -> store -> after-handler. `query.rs` reads and validates
//! the find query.

mod operation;
mod query;
mod relations;
mod transaction;

pub(crate) use relations::{
    add as add_relation, delete as delete_relation, load as load_relation, set as set_relation,
};
pub(crate) use transaction::unit_of_work;

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use serde_json::{Value, json};

use crate::event::{persistence, user};

use super::auth::Requester;
use super::config::Operation;
use super::error::ApiError;
use super::store::{self, Object, StorageError, USERS};
use super::where_clause::{compile, is_identifier};
use super::{PathParams, Reply, Shared, json_body, json_object, kind_of, query_map};
use operation::DataOp;
use query::{QueryInput, RelationLoad, parse_query, project, query_of_uri, rows_value};

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

/// POST /data/{table}
pub(crate) async fn create(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let item = json_object(&body)?;
    create_object(&st, &caller, &table, item).await.map(Json)
}

/// PUT /data/{table}: the SDK's save, an update when the body's objectId exists.
pub(crate) async fn save(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let item = json_object(&body)?;
    if let Some(Value::String(id)) = item.get("objectId") {
        let lookup = DataOp::new(&st, &caller, &table, persistence::BEFORE_UPDATE);
        if lookup.exists(id).await? {
            return update_object(&st, &caller, &table, id.clone(), item)
                .await
                .map(Json);
        }
    }
    create_object(&st, &caller, &table, item).await.map(Json)
}

/// The owner of the rows a caller creates: the logged-in user, if any.
fn owner_of(caller: &Requester) -> Option<String> {
    caller.user_id().map(str::to_owned)
}

/// PUT /data/{table}/upsert: the SDK's `save(obj, true)`. Updates the object
/// when the body's objectId exists (update permission, owner policy), else
/// creates it (create permission; a client-chosen objectId is kept). Fires
/// beforeUpsert/afterUpsert, not the create/update events.
pub(crate) async fn upsert(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    no_user_upsert(&table)?;
    let item = json_object(&body)?;
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_UPSERT);
    check_upsert(op, &item).await?;
    let owner = owner_of(&caller);
    op.run(vec![Value::Object(item)], |mut args| async move {
        let item = as_object(args[0].take(), "item")?;
        let saved = op
            .store(move |c, t| upsert_one(c, t, item, owner.as_deref()))
            .await?;
        Ok(Value::Object(saved))
    })
    .await
    .map(Json)
}

fn no_user_upsert(table: &str) -> Result<(), ApiError> {
    if table == USERS {
        return Err(ApiError::new(
            0,
            "upsert of users is not supported; use users/register or PUT users/{id}",
        ));
    }
    Ok(())
}

/// Update permission on an existing object, create permission otherwise.
async fn check_upsert(op: DataOp<'_>, item: &Object) -> Result<(), ApiError> {
    if let Some(Value::String(id)) = item.get("objectId") {
        if op.exists(id).await? {
            op.load_checked(id, Operation::Update).await?;
            return Ok(());
        }
    }
    op.check(Operation::Create)
}

fn upsert_one(
    c: &rusqlite::Connection,
    table: &str,
    item: Object,
    owner: Option<&str>,
) -> Result<Object, StorageError> {
    let existing = match item.get("objectId") {
        Some(Value::String(id)) => store::get(c, table, id)?,
        _ => None,
    };
    match existing {
        Some(existing) => store::update(c, table, existing, item),
        None => store::insert(c, table, item, owner),
    }
}

/// PUT /data/bulkupsert/{table} (array) -> the objectIds, in order; one
/// transaction; beforeUpsertBulk/afterUpsertBulk.
pub(crate) async fn bulk_upsert(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    no_user_upsert(&table)?;
    let items = array_body(&body)?;
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_UPSERT_BULK);
    for item in &items {
        let Value::Object(item) = item else {
            return Err(ApiError::parse("every item must be a JSON object"));
        };
        check_upsert(op, item).await?;
    }
    op.run(vec![Value::Array(items)], |args| async move {
        op.save_all(changed_items(&args[0])?, upsert_one).await
    })
    .await
    .map(Json)
}

pub(crate) async fn create_object(
    st: &Shared,
    caller: &Requester,
    table: &str,
    item: Object,
) -> Result<Value, ApiError> {
    if table == USERS {
        return super::users::register_user(st, caller, item).await;
    }
    let op = DataOp::new(st, caller, table, persistence::BEFORE_CREATE);
    op.check(Operation::Create)?;
    let owner = owner_of(caller);
    op.run(vec![Value::Object(item)], |mut args| async move {
        let item = as_object(args[0].take(), "item")?;
        let saved = op
            .store(move |c, t| store::insert(c, t, item, owner.as_deref()))
            .await?;
        Ok(Value::Object(saved))
    })
    .await
}

/// PUT /data/{table}/{id}
pub(crate) async fn update(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
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
    caller: &Requester,
    table: &str,
    id: String,
    mut changes: Object,
) -> Result<Value, ApiError> {
    let op =
        DataOp::new(st, caller, table, persistence::BEFORE_UPDATE).users_fire(user::BEFORE_UPDATE);
    op.load_checked(&id, Operation::Update).await?;
    changes.insert("objectId".into(), Value::String(id.clone()));
    op.run(vec![Value::Object(changes)], |mut args| async move {
        let changes = as_object(args[0].take(), "item")?;
        let saved = op
            .store(move |c, t| {
                store::transaction(c, |tx| {
                    let existing = store::get(tx, t, &id)?.ok_or_else(ApiError::not_found)?;
                    Ok::<_, ApiError>(store::update(tx, t, existing, changes)?)
                })
            })
            .await?;
        Ok(Value::Object(saved))
    })
    .await
}

/// GET /data/{table}/{id}?loadRelations=&relationsDepth=&relationsPageSize=
pub(crate) async fn find_by_id(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Reply {
    let table = table_of(&p)?;
    let id = id_of(&p);
    let load = RelationLoad::parse(&query_of_uri(&uri))?;
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_FIND_BY_ID)
        .users_fire(user::BEFORE_FIND_BY_ID);
    let row = op.load_checked(&id, Operation::Find).await?;
    let args = vec![Value::String(id.clone()), json!(load.names)];
    op.run(args, |args| async move {
        let row = match args[0].as_str() {
            Some(new_id) if new_id != id => op.load_checked(new_id, Operation::Find).await?,
            _ => row,
        };
        if !load.any() {
            return Ok(Value::Object(row));
        }
        let (st, caller) = (op.st.clone(), op.caller.clone());
        let mut rows = op
            .store(move |c, t| {
                let mut rows = vec![row];
                relations::embed(c, &st, &caller, t, &mut rows, &load)?;
                Ok::<_, ApiError>(rows)
            })
            .await?;
        Ok(rows.pop().map_or(Value::Null, Value::Object))
    })
    .await
    .map(Json)
}

/// DELETE /data/{table}/{id}
pub(crate) async fn remove(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
) -> Reply {
    let table = table_of(&p)?;
    let id = id_of(&p);
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_REMOVE)
        .users_fire(user::BEFORE_REMOVE);
    op.load_checked(&id, Operation::Remove).await?;
    op.run(vec![Value::String(id)], |args| async move {
        let id = args[0].as_str().unwrap_or_default().to_owned();
        let i = id.clone();
        if !op.store(move |c, t| store::delete(c, t, &i)).await? {
            return Err(ApiError::not_found());
        }
        if op.table == USERS {
            op.st.sessions.close_user(&id);
        }
        Ok(json!({"deletionTime": store::now_ms()}))
    })
    .await
    .map(Json)
}

/// GET /data/{table}?where=&pageSize=&offset=&sortBy=&props=, and
/// POST /data/{table}/find with the query as a JSON body.
pub(crate) async fn find(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    input: QueryInput,
) -> Reply {
    let table = table_of(&p)?;
    let query = input.query()?;
    let op =
        DataOp::new(&st, &caller, &table, persistence::BEFORE_FIND).users_fire(user::BEFORE_FIND);
    op.check(Operation::Find)?;
    parse_query(&query)?;
    op.run(vec![query], |args| async move {
        let q = parse_query(&args[0])?;
        let (st, caller) = (op.st.clone(), op.caller.clone());
        let rows = op
            .store(move |c, t| {
                let mut rows = project(store::find(c, t, &q.find)?, &q.props);
                if q.relations.any() {
                    relations::embed(c, &st, &caller, t, &mut rows, &q.relations)?;
                }
                Ok::<_, ApiError>(rows)
            })
            .await?;
        Ok(rows_value(rows))
    })
    .await
    .map(Json)
}

/// GET /data/{table}/count?where=, and POST /data/{table}/count {where}.
pub(crate) async fn count(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    input: QueryInput,
) -> Reply {
    let table = table_of(&p)?;
    let query = input.query()?;
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_COUNT);
    op.check(Operation::Find)?;
    parse_query(&query)?;
    op.run(vec![query], |args| async move {
        let q = parse_query(&args[0])?;
        let n = op
            .store(move |c, t| store::count(c, t, q.find.condition.as_ref()))
            .await?;
        Ok(Value::from(n))
    })
    .await
    .map(Json)
}

/// POST /data/bulk/{table} (array of objects) -> array of ids.
pub(crate) async fn bulk_create(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let items = array_body(&body)?;
    if table == USERS {
        return Err(ApiError::new(
            0,
            "bulk creation of users is not supported; use users/register",
        ));
    }
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_CREATE_BULK);
    op.check(Operation::Create)?;
    op.run(vec![Value::Array(items)], |args| async move {
        op.save_all(changed_items(&args[0])?, store::insert).await
    })
    .await
    .map(Json)
}

/// PUT /data/bulk/{table}?where= (body = changes) -> count.
pub(crate) async fn bulk_update(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    uri: Uri,
    body: Bytes,
) -> Reply {
    let table = table_of(&p)?;
    let changes = json_object(&body)?;
    let op = DataOp::new(&st, &caller, &table, persistence::BEFORE_UPDATE_BULK);
    op.check(Operation::Update)?;
    let clause = query_map(&uri).remove("where").unwrap_or_default();
    compile(&clause)?;
    let args = vec![
        Value::String(table.clone()),
        Value::String(clause),
        Value::Object(changes),
    ];
    op.run(args, |mut args| async move {
        let condition = compile(args[1].as_str().unwrap_or_default())?;
        let changes = as_object(args[2].take(), "changes")?;
        let ids = op
            .for_each_matching(condition, Operation::Update, move |tx, t, _, row| {
                store::update(tx, t, row, changes.clone()).map(drop)
            })
            .await?;
        Ok(Value::from(ids.len()))
    })
    .await
    .map(Json)
}

async fn bulk_delete(st: &Shared, caller: &Requester, table: &str, clause: &str) -> Reply {
    let op = DataOp::new(st, caller, table, persistence::BEFORE_REMOVE_BULK);
    op.check(Operation::Remove)?;
    compile(clause)?;
    let args = vec![
        Value::String(table.to_owned()),
        Value::String(clause.to_owned()),
    ];
    op.run(args, |args| async move {
        let condition = compile(args[1].as_str().unwrap_or_default())?;
        let ids = op
            .for_each_matching(condition, Operation::Remove, |tx, t, id, _| {
                store::delete(tx, t, id).map(drop)
            })
            .await?;
        if table == USERS {
            for id in &ids {
                st.sessions.close_user(id);
            }
        }
        Ok(Value::from(ids.len()))
    })
    .await
    .map(Json)
}

/// DELETE /data/bulk/{table}?where= -> count.
pub(crate) async fn bulk_delete_query(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Reply {
    let table = table_of(&p)?;
    let clause = query_map(&uri).remove("where").unwrap_or_default();
    bulk_delete(&st, &caller, &table, &clause).await
}

/// POST /data/bulk/{table}/delete {where} -> count.
pub(crate) async fn bulk_delete_body(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
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
            )));
        }
    };
    bulk_delete(&st, &caller, &table, &clause).await
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
