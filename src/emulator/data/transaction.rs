//! Transactions: `POST /transaction/unit-of-work` runs a list of operations
//! in one SQLite transaction, all or nothing. A later operation may use an
//! earlier one's result through a reference (`{"___ref": true, "opResultId",
//! "resultIndex", "propName"}`). Each operation is checked as its own route
//! would be (table permissions, the per-row rule, relation permissions);
//! transactions fire no events.
//!
//! Reply (HTTP 200 either way, as the JS SDK reads it): `{"success": true,
//! "error": null, "results": {opResultId: {"type", "result"}}}`, or
//! `{"success": false, "error": {"code", "message", "operation":
//! {operationType, table, opResultId, payload}}, "results": null}` with
//! nothing written. A request that is not a list of operations is 8002.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::operation::check_row;
use super::query::{parse_query, project, rows_value};
use super::relations::{Change, Children, bad_child, change_relation, child_id};
use crate::emulator::auth::Requester;
use crate::emulator::config::Operation;
use crate::emulator::error::ApiError;
use crate::emulator::store::{self, Object, USERS};
use crate::emulator::where_clause::{compile, is_identifier};
use crate::emulator::{AppState, Reply, Shared, json_body, kind_of};

/// The most operations one transaction may hold (a bound of the emulator's own).
pub(crate) const MAX_OPERATIONS: usize = 1000;

/// The operation types of a unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpType {
    Create,
    CreateBulk,
    Update,
    UpdateBulk,
    Delete,
    DeleteBulk,
    Upsert,
    UpsertBulk,
    Find,
    AddRelation,
    SetRelation,
    DeleteRelation,
}

impl OpType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "CREATE" => Self::Create,
            "CREATE_BULK" => Self::CreateBulk,
            "UPDATE" => Self::Update,
            "UPDATE_BULK" => Self::UpdateBulk,
            "DELETE" => Self::Delete,
            "DELETE_BULK" => Self::DeleteBulk,
            "UPSERT" => Self::Upsert,
            "UPSERT_BULK" => Self::UpsertBulk,
            "FIND" => Self::Find,
            "ADD_RELATION" => Self::AddRelation,
            "SET_RELATION" => Self::SetRelation,
            "DELETE_RELATION" => Self::DeleteRelation,
            _ => return None,
        })
    }
}

/// One operation as sent.
struct Op {
    kind: OpType,
    type_name: String,
    table: String,
    id: String,
    payload: Value,
}

/// POST /transaction/unit-of-work
pub(crate) async fn unit_of_work(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Reply {
    let ops = read_ops(json_body(&body)?)?;
    let st2 = st.clone();
    let (reply, closed_users) = st
        .store
        .call(move |c| {
            let tx = c.transaction().map_err(store::StorageError::from)?;
            let mut run = Run {
                st: &st2,
                caller: &caller,
                results: HashMap::new(),
                deleted_users: Vec::new(),
            };
            let mut results = Map::new();
            for op in &ops {
                match run.op(&tx, op) {
                    Ok(result) => {
                        results.insert(
                            op.id.clone(),
                            json!({"type": op.type_name, "result": result}),
                        );
                        run.results.insert(op.id.clone(), result);
                    }
                    Err(e) => {
                        // Dropping `tx` rolls every earlier operation back.
                        drop(tx);
                        let reply = json!({
                            "success": false,
                            "error": {
                                "code": e.code,
                                "message": e.message,
                                "operation": {
                                    "operationType": op.type_name,
                                    "table": op.table,
                                    "opResultId": op.id,
                                    "payload": op.payload,
                                },
                            },
                            "results": null,
                        });
                        return Ok::<_, ApiError>((reply, Vec::new()));
                    }
                }
            }
            tx.commit().map_err(store::StorageError::from)?;
            let reply = json!({"success": true, "error": null, "results": results});
            Ok((reply, run.deleted_users))
        })
        .await?;
    for id in &closed_users {
        st.sessions.close_user(id);
    }
    Ok(Json(reply))
}

/// Checks the request's shape; gives each operation its opResultId (the JS
/// SDK's `{type}{Table}{n}` when none was sent).
fn read_ops(body: Value) -> Result<Vec<Op>, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::parse("a unit of work must be a JSON object"));
    };
    let Some(Value::Array(items)) = body.remove("operations") else {
        return Err(ApiError::parse(
            "a unit of work needs `operations`, an array",
        ));
    };
    if items.is_empty() || items.len() > MAX_OPERATIONS {
        return Err(ApiError::parse(format!(
            "a unit of work holds 1 to {MAX_OPERATIONS} operations, not {}",
            items.len()
        )));
    }
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut ops: Vec<Op> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(mut item) = item else {
            return Err(ApiError::parse(format!(
                "operation {index} must be a JSON object"
            )));
        };
        let type_name = item
            .get("operationType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = OpType::parse(&type_name).ok_or_else(|| {
            ApiError::parse(format!(
                "operation {index}: unknown operationType `{type_name}`"
            ))
        })?;
        let table = item
            .get("table")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !is_identifier(&table) {
            return Err(ApiError::parse(format!(
                "operation {index}: `{table}` is not a valid table name"
            )));
        }
        let id = match item.get("opResultId") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            None | Some(Value::Null) => {
                let stack = format!("{}{table}", type_name.to_ascii_lowercase());
                let n = counters.entry(stack.clone()).or_default();
                *n += 1;
                format!("{stack}{n}")
            }
            Some(other) => {
                return Err(ApiError::parse(format!(
                    "operation {index}: opResultId must be a string, got {}",
                    kind_of(other)
                )));
            }
        };
        if ops.iter().any(|o| o.id == id) {
            return Err(ApiError::parse(format!(
                "operation {index}: opResultId `{id}` is used twice"
            )));
        }
        ops.push(Op {
            kind,
            type_name,
            table,
            id,
            payload: item.remove("payload").unwrap_or(Value::Null),
        });
    }
    Ok(ops)
}

/// A transaction under way: who runs it and what earlier operations gave.
struct Run<'a> {
    st: &'a AppState,
    caller: &'a Requester,
    results: HashMap<String, Value>,
    /// Users removed: their sessions end once the transaction commits.
    deleted_users: Vec<String>,
}

impl Run<'_> {
    fn op(&mut self, tx: &Connection, op: &Op) -> Result<Value, ApiError> {
        let payload = self.resolve(&op.payload)?;
        let table = op.table.as_str();
        let owner = self.caller.user_id().map(str::to_owned);
        let (st, caller) = (self.st, self.caller);
        match op.kind {
            OpType::Create => {
                no_users(table, "create")?;
                st.permissions.check(
                    table,
                    Operation::Create,
                    &caller.roles,
                    caller.user_id(),
                    None,
                )?;
                let item = object(payload, "payload")?;
                Ok(Value::Object(store::insert(
                    tx,
                    table,
                    item,
                    owner.as_deref(),
                )?))
            }
            OpType::CreateBulk => {
                no_users(table, "create")?;
                st.permissions.check(
                    table,
                    Operation::Create,
                    &caller.roles,
                    caller.user_id(),
                    None,
                )?;
                let mut ids = Vec::new();
                for item in array(payload)? {
                    let saved = store::insert(tx, table, object(item, "item")?, owner.as_deref())?;
                    ids.push(saved["objectId"].clone());
                }
                Ok(Value::Array(ids))
            }
            OpType::Upsert => {
                no_users(table, "upsert")?;
                Ok(Value::Object(self.upsert(
                    tx,
                    table,
                    object(payload, "payload")?,
                )?))
            }
            OpType::UpsertBulk => {
                no_users(table, "upsert")?;
                let mut ids = Vec::new();
                for item in array(payload)? {
                    let saved = self.upsert(tx, table, object(item, "item")?)?;
                    ids.push(saved["objectId"].clone());
                }
                Ok(Value::Array(ids))
            }
            OpType::Update => {
                let changes = object(payload, "payload")?;
                let id = changes
                    .get("objectId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::parse("an UPDATE payload needs an objectId"))?
                    .to_owned();
                let row = self.row(tx, table, &id, Operation::Update)?;
                Ok(Value::Object(store::update(tx, table, row, changes)?))
            }
            OpType::Delete => {
                let id = child_id(&payload).ok_or_else(|| bad_child(&payload))?;
                self.row(tx, table, &id, Operation::Remove)?;
                self.remove(tx, table, &id)?;
                Ok(Value::from(store::now_ms()))
            }
            OpType::UpdateBulk => {
                let mut payload = object(payload, "payload")?;
                let changes = object(payload.remove("changes").unwrap_or(Value::Null), "changes")?;
                let ids = self.targets(tx, table, &payload, Operation::Update)?;
                for id in &ids {
                    let row = self.row(tx, table, id, Operation::Update)?;
                    store::update(tx, table, row, changes.clone())?;
                }
                Ok(Value::from(ids.len()))
            }
            OpType::DeleteBulk => {
                let payload = object(payload, "payload")?;
                let ids = self.targets(tx, table, &payload, Operation::Remove)?;
                for id in &ids {
                    self.row(tx, table, id, Operation::Remove)?;
                    self.remove(tx, table, id)?;
                }
                Ok(Value::from(ids.len()))
            }
            OpType::Find => {
                let query = parse_query(&find_query(&payload))?;
                st.permissions.check(
                    table,
                    Operation::Find,
                    &caller.roles,
                    caller.user_id(),
                    None,
                )?;
                let mut rows = project(store::find(tx, table, &query.find)?, &query.props);
                if query.relations.any() {
                    super::relations::embed(tx, st, caller, table, &mut rows, &query.relations)?;
                }
                Ok(rows_value(rows))
            }
            OpType::AddRelation | OpType::SetRelation | OpType::DeleteRelation => {
                let change = match op.kind {
                    OpType::AddRelation => Change::Add,
                    OpType::SetRelation => Change::Set,
                    _ => Change::Delete,
                };
                let payload = object(payload, "payload")?;
                let parent = payload
                    .get("parentObject")
                    .and_then(child_id)
                    .ok_or_else(|| ApiError::parse("a relation payload needs a parentObject"))?;
                let column = payload
                    .get("relationColumn")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::parse("a relation payload needs a relationColumn"))?;
                let children = match (payload.get("conditional"), payload.get("unconditional")) {
                    (Some(Value::String(clause)), _) => Children::Where(compile(clause)?),
                    (_, Some(list)) => Children::Ids(ids_of(list)?),
                    _ => {
                        return Err(ApiError::parse(
                            "a relation payload needs `conditional` or `unconditional` children",
                        ));
                    }
                };
                let n = change_relation(tx, st, caller, table, &parent, column, children, change)?;
                Ok(Value::from(n))
            }
        }
    }

    /// The row `id`, checked for `op` (1000 when missing).
    fn row(
        &self,
        tx: &Connection,
        table: &str,
        id: &str,
        op: Operation,
    ) -> Result<Object, ApiError> {
        let row = store::get(tx, table, id)?.ok_or_else(ApiError::not_found)?;
        check_row(self.st, self.caller, table, op, &row)?;
        Ok(row)
    }

    fn remove(&mut self, tx: &Connection, table: &str, id: &str) -> Result<(), ApiError> {
        store::delete(tx, table, id)?;
        if table == USERS {
            self.deleted_users.push(id.to_owned());
        }
        Ok(())
    }

    fn upsert(&self, tx: &Connection, table: &str, item: Object) -> Result<Object, ApiError> {
        if let Some(Value::String(id)) = item.get("objectId") {
            if let Some(row) = store::get(tx, table, id)? {
                check_row(self.st, self.caller, table, Operation::Update, &row)?;
                return Ok(store::update(tx, table, row, item)?);
            }
        }
        let caller = self.caller;
        self.st.permissions.check(
            table,
            Operation::Create,
            &caller.roles,
            caller.user_id(),
            None,
        )?;
        Ok(store::insert(tx, table, item, caller.user_id())?)
    }

    /// The rows a bulk operation names: `unconditional` ids, or the rows
    /// matching the `conditional` where clause (after the table permission).
    fn targets(
        &self,
        tx: &Connection,
        table: &str,
        payload: &Object,
        op: Operation,
    ) -> Result<Vec<String>, ApiError> {
        let caller = self.caller;
        self.st
            .permissions
            .check(table, op, &caller.roles, caller.user_id(), None)?;
        match (payload.get("conditional"), payload.get("unconditional")) {
            (Some(Value::String(clause)), _) => {
                Ok(store::matching_ids(tx, table, compile(clause)?.as_ref())?)
            }
            (_, Some(list)) => ids_of(list),
            _ => Err(ApiError::parse(
                "a bulk payload needs `conditional` (a where clause) or `unconditional` (ids)",
            )),
        }
    }

    /// `value` with every reference replaced by what it points to.
    fn resolve(&self, value: &Value) -> Result<Value, ApiError> {
        match value {
            Value::Object(o) if o.get("___ref") == Some(&Value::Bool(true)) => self.reference(o),
            Value::Object(o) => Ok(Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, ApiError>>()?,
            )),
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    /// An earlier result, or the item `resultIndex` of it, or the property
    /// `propName` of that (of each item, for a list).
    fn reference(&self, r: &Object) -> Result<Value, ApiError> {
        let id = r
            .get("opResultId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut value = self
            .results
            .get(id)
            .ok_or_else(|| {
                ApiError::parse(format!(
                    "a reference to `{id}`, which is not an earlier operation"
                ))
            })?
            .clone();
        if let Some(index) = r.get("resultIndex").filter(|v| !v.is_null()) {
            let i = index
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| ApiError::parse("resultIndex must be a non-negative integer"))?;
            value = value
                .get(i)
                .cloned()
                .ok_or_else(|| ApiError::parse(format!("the result of `{id}` has no item {i}")))?;
        }
        if let Some(prop) = r.get("propName").and_then(Value::as_str) {
            let pick = |v: Value| match v {
                Value::Object(mut o) => o.remove(prop).unwrap_or(Value::Null),
                // An id stands for its row: its objectId is itself.
                Value::String(s) if prop == "objectId" => Value::String(s),
                _ => Value::Null,
            };
            value = match value {
                Value::Array(items) => Value::Array(items.into_iter().map(pick).collect()),
                other => pick(other),
            };
        }
        Ok(value)
    }
}

fn no_users(table: &str, what: &str) -> Result<(), ApiError> {
    if table == USERS {
        return Err(ApiError::new(
            0,
            format!("a transaction cannot {what} users; use users/register"),
        ));
    }
    Ok(())
}

fn object(v: Value, what: &str) -> Result<Object, ApiError> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(ApiError::parse(format!(
            "the {what} must be a JSON object, got {}",
            kind_of(&other)
        ))),
    }
}

fn array(v: Value) -> Result<Vec<Value>, ApiError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(ApiError::parse(format!(
            "the payload must be a JSON array, got {}",
            kind_of(&other)
        ))),
    }
}

/// Ids given as a list of ids or objects (or a resolved reference to one).
fn ids_of(list: &Value) -> Result<Vec<String>, ApiError> {
    match list {
        Value::Array(items) => items
            .iter()
            .map(|i| child_id(i).ok_or_else(|| bad_child(i)))
            .collect(),
        single => child_id(single)
            .map(|id| vec![id])
            .ok_or_else(|| bad_child(single)),
    }
}

/// A FIND payload in the shape of the find routes' query.
fn find_query(p: &Value) -> Value {
    let options = &p["queryOptions"];
    json!({
        "whereClause": p["whereClause"],
        "pageSize": p["pageSize"],
        "offset": p["offset"],
        "properties": list(&p["properties"]),
        "sortBy": list(&options["sortBy"]),
        "groupBy": list(&p["groupBy"]),
        "havingClause": p["havingClause"],
        "distinct": p["distinct"],
        "related": list(&options["related"]),
        "relationsDepth": options["relationsDepth"],
        "relationsPageSize": options["relationsPageSize"],
    })
}

fn list(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::Array(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Value::Array(_) => v.clone(),
        _ => json!([]),
    }
}
