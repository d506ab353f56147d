//! SQLite storage of objects and credentials. Every call runs on a blocking
//! thread (`spawn_blocking`), never on the async workers.
//!
//! Objects are stored as JSON text, one row each, with the system fields
//! (`objectId`, `ownerId`, `created`, `updated`, `___class`) both inside the
//! JSON (so that where clauses see them) and in columns.
//!
//! A user is a row of `Users` plus its credentials (login, salted password
//! hash, custom roles) in a table of their own. A `password` property never
//! reaches a `Users` row: [`insert`] and [`update`] take it out (an update
//! turns it into a new hash), changing `email` moves the login (3033 when
//! another user has it), and [`delete`] of a user forgets its credentials.

use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::where_clause::{SqlCondition, json_path};

/// A JSON object.
pub(super) type Object = Map<String, Value>;

/// Why a storage call failed. The routes turn it into a Backendless error
/// (`From<StorageError> for ApiError`); the storage layer knows nothing of HTTP.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An insert with a client-chosen objectId that is taken.
    #[error("Duplicate entry: an object with objectId {0} already exists")]
    DuplicateId(String),
    /// A register or an email change to an email another user has.
    #[error("User already exists. Unable to register user with email {0}")]
    EmailTaken(String),
    /// A user property that must be a non-empty string is missing.
    #[error("Property '{0}' is required")]
    Required(&'static str),
    /// A user update whose `password` is not a non-empty string.
    #[error("Property 'password' must be a non-empty string")]
    InvalidPassword,
    /// A relation column declared again with another child table or cardinality.
    #[error("Relation column {0} is already declared with another child table or cardinality")]
    RelationConflict(String),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored body or a role list is not the JSON it should be.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The blocking thread that ran the call failed.
    #[error("storage thread: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

/// The system fields a client cannot set directly.
pub(super) const SYSTEM_FIELDS: &[&str] =
    &["objectId", "ownerId", "created", "updated", "___class"];

/// The table of users.
pub(super) const USERS: &str = "Users";

/// The shared SQLite connection.
#[derive(Clone)]
pub(crate) struct Store {
    conn: Arc<Mutex<Connection>>,
}

/// A find query, already validated.
#[derive(Debug, Clone, Default)]
pub(super) struct FindQuery {
    /// The compiled where clause.
    pub condition: Option<SqlCondition>,
    /// `(property, descending)`.
    pub sort: Vec<(String, bool)>,
    /// 1..=100.
    pub page_size: u32,
    /// >= 0.
    pub offset: u64,
    /// Aggregates, grouping or `distinct`: the rows found are made of the
    /// selected columns only.
    pub selection: Option<Selection>,
}

/// An aggregate function of `props`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Aggregate {
    /// `Count(p)`: rows where `p` is not null (`Count(*)`: all rows).
    Count,
    /// `Sum(p)`.
    Sum,
    /// `Avg(p)`.
    Avg,
    /// `Min(p)`.
    Min,
    /// `Max(p)`.
    Max,
}

impl Aggregate {
    /// The function named `name` (any case).
    pub(super) fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            _ => return None,
        })
    }

    /// The property a result gets without an alias (`count`, `sum`...).
    pub(super) fn default_name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Count => "COUNT",
            Self::Sum => "SUM",
            Self::Avg => "AVG",
            Self::Min => "MIN",
            Self::Max => "MAX",
        }
    }
}

/// One selected column of a grouped or distinct find.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Column {
    /// A property as stored.
    Prop(String),
    /// An aggregate over a property (`None`: `*`).
    Aggregate(Aggregate, Option<String>),
}

/// The columns of a grouped or distinct find, each under its name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Selection {
    /// `(column, name in the result)`.
    pub columns: Vec<(Column, String)>,
    /// Properties to group by.
    pub group_by: Vec<String>,
    /// The `having` condition over the named results.
    pub having: Option<SqlCondition>,
    /// Only distinct results.
    pub distinct: bool,
}

/// Milliseconds since the epoch, now.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A new uppercase GUID, as Backendless makes object ids.
pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

fn hash_password(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens (or creates) the database at `path` (`:memory:` for none) and
    /// creates the schema.
    pub(crate) fn open(path: &str) -> anyhow::Result<Store> {
        use anyhow::Context;
        let conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            Connection::open(path)
        }
        .with_context(|| format!("while opening the emulator database {path}"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS objects(
                 class TEXT NOT NULL, object_id TEXT NOT NULL, owner_id TEXT,
                 created INTEGER NOT NULL, updated INTEGER, body TEXT NOT NULL,
                 PRIMARY KEY (class, object_id));
             CREATE TABLE IF NOT EXISTS relation_columns(
                 parent_class TEXT NOT NULL, column_name TEXT NOT NULL,
                 child_class TEXT NOT NULL, many INTEGER NOT NULL,
                 PRIMARY KEY (parent_class, column_name));
             CREATE TABLE IF NOT EXISTS relations(
                 parent_class TEXT NOT NULL, parent_id TEXT NOT NULL, column_name TEXT NOT NULL,
                 child_class TEXT NOT NULL, child_id TEXT NOT NULL, position INTEGER NOT NULL,
                 PRIMARY KEY (parent_class, parent_id, column_name, child_id));
             CREATE INDEX IF NOT EXISTS relations_by_child ON relations(child_class, child_id);
             CREATE TABLE IF NOT EXISTS credentials(
                 user_id TEXT PRIMARY KEY, login TEXT NOT NULL UNIQUE COLLATE NOCASE,
                 salt TEXT NOT NULL, hash TEXT NOT NULL, roles TEXT NOT NULL DEFAULT '[]');
             UPDATE objects SET body = json_remove(body, '$.password')
                 WHERE class = 'Users' AND json_type(body, '$.password') IS NOT NULL;",
        )
        .context("while creating the emulator schema")?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on a blocking thread. `f` may fail with
    /// any error a [`StorageError`] converts into (a route's own checks inside a
    /// transaction fail with the route's error).
    pub(crate) async fn call<F, R, E>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|e| E::from(StorageError::Thread(e)))?
    }

    /// Runs `f` with the connection on the current thread (start-up, tests).
    pub(crate) fn call_sync<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        f(&mut self.conn.lock())
    }
}

/// Runs `f` in a transaction: committed when `f` succeeds, rolled back when
/// it fails (nothing it wrote stays).
pub(super) fn transaction<R, E: From<StorageError>>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<R, E>,
) -> Result<R, E> {
    let tx = conn.transaction().map_err(StorageError::from)?;
    let out = f(&tx)?;
    tx.commit().map_err(StorageError::from)?;
    Ok(out)
}

fn parse_body(text: &str) -> Result<Object, StorageError> {
    Ok(serde_json::from_str(text)?)
}

/// Inserts a new object of `class`; `item`'s system fields are replaced, except
/// a client-chosen string `objectId` that is not yet taken. A user's
/// `password` is dropped (credentials are made by [`create_user`]).
pub(super) fn insert(
    conn: &Connection,
    class: &str,
    mut item: Object,
    owner: Option<&str>,
) -> Result<Object, StorageError> {
    let id = match item.get("objectId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => new_id(),
    };
    for f in SYSTEM_FIELDS {
        item.remove(*f);
    }
    if class == USERS {
        item.remove("password");
    }
    let now = now_ms();
    item.insert("objectId".into(), Value::String(id.clone()));
    item.insert(
        "ownerId".into(),
        owner.map_or(Value::Null, |o| Value::String(o.into())),
    );
    item.insert("created".into(), Value::from(now));
    item.insert("updated".into(), Value::Null);
    item.insert("___class".into(), Value::String(class.into()));
    let body = Value::Object(item.clone()).to_string();
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO objects(class, object_id, owner_id, created, updated, body)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        params![class, id, owner, now, body],
    )?;
    if inserted == 0 {
        return Err(StorageError::DuplicateId(id));
    }
    Ok(item)
}

/// The object `id` of `class`.
pub(super) fn get(
    conn: &Connection,
    class: &str,
    id: &str,
) -> Result<Option<Object>, StorageError> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM objects WHERE class = ?1 AND object_id = ?2",
            params![class, id],
            |r| r.get(0),
        )
        .optional()?;
    body.map(|b| parse_body(&b)).transpose()
}

/// Merges `changes` into `existing` (system fields are kept) and stores it.
/// For a user, a `password` change sets a new hash instead, and an `email`
/// change moves the login (see [`change_credentials`]).
pub(super) fn update(
    conn: &Connection,
    class: &str,
    mut existing: Object,
    mut changes: Object,
) -> Result<Object, StorageError> {
    if class == USERS {
        change_credentials(conn, &existing, &mut changes)?;
    }
    for (k, v) in changes {
        if !SYSTEM_FIELDS.contains(&k.as_str()) {
            existing.insert(k, v);
        }
    }
    let now = now_ms();
    existing.insert("updated".into(), Value::from(now));
    let id = existing
        .get("objectId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body = Value::Object(existing.clone()).to_string();
    conn.execute(
        "UPDATE objects SET updated = ?1, body = ?2 WHERE class = ?3 AND object_id = ?4",
        params![now, body, class, id],
    )?;
    Ok(existing)
}

/// Deletes the object; whether it existed. Deleting a user forgets its
/// credentials too, so that its email can register again (its sessions are
/// the caller's to end). The object leaves every relation, as a parent and
/// as a child.
pub(super) fn delete(conn: &Connection, class: &str, id: &str) -> Result<bool, StorageError> {
    if class == USERS {
        delete_credentials(conn, id)?;
    }
    conn.execute(
        "DELETE FROM relations WHERE (parent_class = ?1 AND parent_id = ?2)
             OR (child_class = ?1 AND child_id = ?2)",
        params![class, id],
    )?;
    Ok(conn.execute(
        "DELETE FROM objects WHERE class = ?1 AND object_id = ?2",
        params![class, id],
    )? > 0)
}

/// Applies the credential part of a user update and takes it out of
/// `changes`: a `password` becomes a new salted hash; a new `email` becomes
/// the login, unless another user has it (3033). Both are checked before
/// either is written.
fn change_credentials(
    conn: &Connection,
    existing: &Object,
    changes: &mut Object,
) -> Result<(), StorageError> {
    let id = existing
        .get("objectId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let password = match changes.remove("password") {
        None => None,
        Some(Value::String(pw)) if !pw.is_empty() => Some(pw),
        Some(_) => return Err(StorageError::InvalidPassword),
    };
    let email = match changes.get("email") {
        None => None,
        Some(Value::String(e)) if !e.is_empty() => Some(e.as_str()),
        Some(_) => return Err(StorageError::Required("email")),
    };
    if let Some(email) = email {
        let holder: Option<String> = conn
            .query_row(
                "SELECT user_id FROM credentials WHERE login = ?1",
                params![email],
                |r| r.get(0),
            )
            .optional()?;
        if holder.is_some_and(|h| h != id) {
            return Err(StorageError::EmailTaken(email.to_owned()));
        }
        conn.execute(
            "UPDATE credentials SET login = ?1 WHERE user_id = ?2",
            params![email, id],
        )?;
    }
    if let Some(password) = password {
        set_password(conn, id, &password)?;
    }
    Ok(())
}

fn where_sql(
    class: &str,
    condition: Option<&SqlCondition>,
) -> (String, Vec<rusqlite::types::Value>) {
    let mut params = vec![rusqlite::types::Value::Text(class.to_owned())];
    let mut sql = "class = ?".to_owned();
    push_condition(&mut sql, &mut params, " AND ", condition);
    (sql, params)
}

/// Appends `joint` and `condition` (if any) with its parameters.
fn push_condition(
    sql: &mut String,
    params: &mut Vec<rusqlite::types::Value>,
    joint: &str,
    condition: Option<&SqlCondition>,
) {
    if let Some(c) = condition {
        sql.push_str(joint);
        sql.push_str(&c.sql);
        params.extend(c.params.iter().cloned());
    }
}

/// Appends `q`'s sort keys on the JSON column `body`, then `tie_break`
/// (more sort keys, if any), and `q`'s page.
fn push_order_and_page(
    sql: &mut String,
    params: &mut Vec<rusqlite::types::Value>,
    body: &str,
    q: &FindQuery,
    tie_break: &[&str],
) {
    use rusqlite::types::Value as Sql;
    let mut keys = Vec::with_capacity(q.sort.len() + tie_break.len());
    for (prop, desc) in &q.sort {
        let order = if *desc { "DESC" } else { "ASC" };
        keys.push(format!("json_extract({body}, ?) {order}"));
        params.push(Sql::Text(json_path(prop)));
    }
    keys.extend(tie_break.iter().map(|k| (*k).to_owned()));
    if !keys.is_empty() {
        sql.push_str(" ORDER BY ");
        sql.push_str(&keys.join(", "));
    }
    sql.push_str(" LIMIT ? OFFSET ?");
    params.push(Sql::Integer(i64::from(q.page_size)));
    params.push(Sql::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
}

/// Runs `sql`, whose rows are each one object's body, and parses them.
fn bodies(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Object>, StorageError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    rows.map(|row| parse_body(&row?)).collect()
}

/// Finds objects of `class`.
pub(super) fn find(
    conn: &Connection,
    class: &str,
    q: &FindQuery,
) -> Result<Vec<Object>, StorageError> {
    if let Some(selection) = &q.selection {
        return find_selected(conn, class, q, selection);
    }
    let (cond, mut params) = where_sql(class, q.condition.as_ref());
    let mut sql = format!("SELECT body FROM objects WHERE {cond}");
    push_order_and_page(
        &mut sql,
        &mut params,
        "body",
        q,
        &["created ASC", "rowid ASC"],
    );
    bodies(conn, &sql, params_from_iter(params))
}

/// A grouped or distinct find: each result is a JSON object of the selected
/// columns (and `___class`), built by SQLite; `having` and the sort keys
/// apply to those results. Every name and property is a bound parameter.
fn find_selected(
    conn: &Connection,
    class: &str,
    q: &FindQuery,
    selection: &Selection,
) -> Result<Vec<Object>, StorageError> {
    use rusqlite::types::Value as Sql;
    let mut params: Vec<Sql> = vec![Sql::Text(class.to_owned())];
    let mut sql = String::from("SELECT body FROM (SELECT ");
    if selection.distinct {
        sql.push_str("DISTINCT ");
    }
    sql.push_str("json_object('___class', ?");
    for (column, name) in &selection.columns {
        sql.push_str(", ?, ");
        params.push(Sql::Text(name.clone()));
        match column {
            Column::Prop(prop) => {
                sql.push_str("json_extract(body, ?)");
                params.push(Sql::Text(json_path(prop)));
            }
            Column::Aggregate(func, None) => {
                sql.push_str(func.sql());
                sql.push_str("(*)");
            }
            Column::Aggregate(func, Some(prop)) => {
                sql.push_str(func.sql());
                sql.push_str("(json_extract(body, ?))");
                params.push(Sql::Text(json_path(prop)));
            }
        }
    }
    let (cond, cond_params) = where_sql(class, q.condition.as_ref());
    sql.push_str(") AS body FROM objects WHERE ");
    sql.push_str(&cond);
    params.extend(cond_params);
    for (i, prop) in selection.group_by.iter().enumerate() {
        sql.push_str(if i == 0 { " GROUP BY " } else { ", " });
        sql.push_str("json_extract(body, ?)");
        params.push(Sql::Text(json_path(prop)));
    }
    sql.push(')');
    push_condition(&mut sql, &mut params, " WHERE ", selection.having.as_ref());
    push_order_and_page(&mut sql, &mut params, "body", q, &[]);
    bodies(conn, &sql, params_from_iter(params))
}

/// Every object of `class`, oldest first, whatever the permissions (for
/// inspection in tests and tools).
pub(super) fn all(conn: &Connection, class: &str) -> Result<Vec<Object>, StorageError> {
    bodies(
        conn,
        "SELECT body FROM objects WHERE class = ?1 ORDER BY created ASC, rowid ASC",
        [class],
    )
}

/// The classes that hold objects, with how many each holds, by name.
pub(super) fn classes(conn: &Connection) -> Result<Vec<(String, u64)>, StorageError> {
    let mut stmt =
        conn.prepare("SELECT class, COUNT(*) FROM objects GROUP BY class ORDER BY class")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (class, n) = row?;
        out.push((class, u64::try_from(n).unwrap_or(0)));
    }
    Ok(out)
}

/// The newest `limit` objects of `class`, newest first.
pub(super) fn recent(
    conn: &Connection,
    class: &str,
    limit: u32,
) -> Result<Vec<Object>, StorageError> {
    bodies(
        conn,
        "SELECT body FROM objects WHERE class = ?1 ORDER BY created DESC, rowid DESC LIMIT ?2",
        rusqlite::params![class, limit],
    )
}

/// Counts objects of `class` matching `condition`.
pub(super) fn count(
    conn: &Connection,
    class: &str,
    condition: Option<&SqlCondition>,
) -> Result<i64, StorageError> {
    let (cond, params) = where_sql(class, condition);
    Ok(conn.query_row(
        &format!("SELECT COUNT(*) FROM objects WHERE {cond}"),
        params_from_iter(params),
        |r| r.get(0),
    )?)
}

/// The ids of objects of `class` matching `condition`.
pub(super) fn matching_ids(
    conn: &Connection,
    class: &str,
    condition: Option<&SqlCondition>,
) -> Result<Vec<String>, StorageError> {
    let (cond, params) = where_sql(class, condition);
    let mut stmt = conn.prepare(&format!("SELECT object_id FROM objects WHERE {cond}"))?;
    let ids = stmt
        .query_map(params_from_iter(params), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// A relation column: the child table and whether it holds many children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RelationColumn {
    /// The column's name in the parent table.
    pub column: String,
    /// The child table.
    pub child: String,
    /// `1:N` (else `1:1`).
    pub many: bool,
}

/// Declares `parent.column` -> `child`; declaring the same again is a no-op,
/// another child or cardinality is [`StorageError::RelationConflict`].
pub(super) fn declare_relation(
    conn: &Connection,
    parent: &str,
    column: &str,
    child: &str,
    many: bool,
) -> Result<(), StorageError> {
    conn.execute(
        "INSERT OR IGNORE INTO relation_columns(parent_class, column_name, child_class, many)
         VALUES (?1, ?2, ?3, ?4)",
        params![parent, column, child, many],
    )?;
    match relation_column(conn, parent, column)? {
        Some(c) if c.child == child && c.many == many => Ok(()),
        _ => Err(StorageError::RelationConflict(format!("{parent}.{column}"))),
    }
}

/// The relation column `parent.column`, if declared.
pub(super) fn relation_column(
    conn: &Connection,
    parent: &str,
    column: &str,
) -> Result<Option<RelationColumn>, StorageError> {
    Ok(conn
        .query_row(
            "SELECT child_class, many FROM relation_columns
             WHERE parent_class = ?1 AND column_name = ?2",
            params![parent, column],
            |r| {
                Ok(RelationColumn {
                    column: column.to_owned(),
                    child: r.get(0)?,
                    many: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Every relation column of `parent`, by name.
pub(super) fn relation_columns(
    conn: &Connection,
    parent: &str,
) -> Result<Vec<RelationColumn>, StorageError> {
    let mut stmt = conn.prepare(
        "SELECT column_name, child_class, many FROM relation_columns
         WHERE parent_class = ?1 ORDER BY column_name",
    )?;
    let rows = stmt.query_map([parent], |r| {
        Ok(RelationColumn {
            column: r.get(0)?,
            child: r.get(1)?,
            many: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The ids of the children of `parent_id` in `column`, in the order added.
pub(super) fn related_ids(
    conn: &Connection,
    parent: &str,
    parent_id: &str,
    column: &str,
) -> Result<Vec<String>, StorageError> {
    let mut stmt = conn.prepare(
        "SELECT child_id FROM relations
         WHERE parent_class = ?1 AND parent_id = ?2 AND column_name = ?3 ORDER BY position",
    )?;
    let ids = stmt
        .query_map(params![parent, parent_id, column], |r| {
            r.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// Adds `child_id` at the end of `parent_id`'s `column`; whether it was not
/// there yet.
pub(super) fn link(
    conn: &Connection,
    parent: &str,
    parent_id: &str,
    rel: &RelationColumn,
    child_id: &str,
) -> Result<bool, StorageError> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO relations(parent_class, parent_id, column_name, child_class, child_id, position)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(position), 0) + 1 FROM relations
             WHERE parent_class = ?1 AND parent_id = ?2 AND column_name = ?3))",
        params![parent, parent_id, rel.column, rel.child, child_id],
    )? > 0)
}

/// Removes `child_id` from `parent_id`'s `column`; whether it was there.
pub(super) fn unlink(
    conn: &Connection,
    parent: &str,
    parent_id: &str,
    column: &str,
    child_id: &str,
) -> Result<bool, StorageError> {
    Ok(conn.execute(
        "DELETE FROM relations
         WHERE parent_class = ?1 AND parent_id = ?2 AND column_name = ?3 AND child_id = ?4",
        params![parent, parent_id, column, child_id],
    )? > 0)
}

/// A page of the children of `parent_id` in `rel`, filtered and sorted as
/// `q` says (the relation's own order after the sort keys).
pub(super) fn find_related(
    conn: &Connection,
    parent: &str,
    parent_id: &str,
    rel: &RelationColumn,
    q: &FindQuery,
) -> Result<Vec<Object>, StorageError> {
    let mut params: Vec<rusqlite::types::Value> = vec![
        parent.to_owned().into(),
        parent_id.to_owned().into(),
        rel.column.clone().into(),
        rel.child.clone().into(),
    ];
    let mut sql = "SELECT o.body FROM relations r JOIN objects o
         ON o.class = r.child_class AND o.object_id = r.child_id
         WHERE r.parent_class = ? AND r.parent_id = ? AND r.column_name = ? AND r.child_class = ?"
        .to_owned();
    push_condition(&mut sql, &mut params, " AND ", q.condition.as_ref());
    push_order_and_page(&mut sql, &mut params, "o.body", q, &["r.position ASC"]);
    bodies(conn, &sql, params_from_iter(params))
}

/// A user's stored credentials.
#[derive(Debug, Clone)]
pub(super) struct Credentials {
    /// The user's objectId.
    pub user_id: String,
    /// The user's custom roles.
    pub roles: Vec<String>,
}

/// Creates a user (object in `Users` plus credentials). Fails with 3033 if the
/// email is taken.
pub(super) fn create_user(
    conn: &mut Connection,
    mut user: Object,
    password: &str,
    roles: &[String],
) -> Result<Object, StorageError> {
    let email = user
        .get("email")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(StorageError::Required("email"))?
        .to_owned();
    if password.is_empty() {
        return Err(StorageError::Required("password"));
    }
    user.remove("password");
    user.remove("objectId");
    let tx = conn.transaction()?;
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM credentials WHERE login = ?1)",
        params![email],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StorageError::EmailTaken(email));
    }
    let id = new_id();
    user.insert("objectId".into(), Value::String(id.clone()));
    user.entry("userStatus")
        .or_insert(Value::String("ENABLED".into()));
    let mut stored = insert(&tx, USERS, user, Some(&id))?;
    stored.insert("ownerId".into(), Value::String(id.clone()));
    let salt = new_id();
    tx.execute(
        "INSERT INTO credentials(user_id, login, salt, hash, roles) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            id,
            email,
            salt,
            hash_password(&salt, password),
            serde_json::to_string(roles)?
        ],
    )?;
    tx.commit()?;
    Ok(stored)
}

/// Checks a login and password; the user's credentials when they match.
pub(super) fn check_password(
    conn: &Connection,
    login: &str,
    password: &str,
) -> Result<Option<Credentials>, StorageError> {
    let row: Option<(String, String, String, String)> = conn
        .query_row(
            "SELECT user_id, salt, hash, roles FROM credentials WHERE login = ?1",
            params![login],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(row.and_then(|(user_id, salt, hash, roles)| {
        let given = hash_password(&salt, password);
        let same: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), hash.as_bytes()).into();
        same.then(|| Credentials {
            user_id,
            roles: serde_json::from_str(&roles).unwrap_or_default(),
        })
    }))
}

/// The custom roles of a user, if the user exists.
pub(super) fn user_roles(
    conn: &Connection,
    user_id: &str,
) -> Result<Option<Vec<String>>, StorageError> {
    let roles: Option<String> = conn
        .query_row(
            "SELECT roles FROM credentials WHERE user_id = ?1",
            params![user_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(roles.map(|r| serde_json::from_str(&r).unwrap_or_default()))
}

/// The objectId and login of the user whose objectId or login is `identity`.
pub(super) fn find_user(
    conn: &Connection,
    identity: &str,
) -> Result<Option<(String, String)>, StorageError> {
    Ok(conn
        .query_row(
            "SELECT user_id, login FROM credentials WHERE user_id = ?1 OR login = ?1",
            params![identity],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Replaces a user's custom roles.
pub(super) fn set_roles(
    conn: &Connection,
    user_id: &str,
    roles: &[String],
) -> Result<(), StorageError> {
    conn.execute(
        "UPDATE credentials SET roles = ?1 WHERE user_id = ?2",
        params![serde_json::to_string(roles)?, user_id],
    )?;
    Ok(())
}

/// Sets a user's `userStatus` (`ENABLED`, `DISABLED`); whether the user exists.
pub(super) fn set_user_status(
    conn: &Connection,
    user_id: &str,
    status: &str,
) -> Result<bool, StorageError> {
    let n = conn.execute(
        "UPDATE objects SET body = json_set(body, '$.userStatus', ?1), updated = ?2
         WHERE class = 'Users' AND object_id = ?3",
        params![status, now_ms(), user_id],
    )?;
    Ok(n > 0)
}

/// Changes a user's password.
pub(super) fn set_password(
    conn: &Connection,
    user_id: &str,
    password: &str,
) -> Result<(), StorageError> {
    let salt = new_id();
    conn.execute(
        "UPDATE credentials SET salt = ?1, hash = ?2 WHERE user_id = ?3",
        params![salt, hash_password(&salt, password), user_id],
    )?;
    Ok(())
}

/// Forgets a user's credentials (the user was removed).
pub(super) fn delete_credentials(conn: &Connection, user_id: &str) -> Result<(), StorageError> {
    conn.execute(
        "DELETE FROM credentials WHERE user_id = ?1",
        params![user_id],
    )?;
    Ok(())
}

/// Whether a login is taken.
pub(super) fn login_exists(conn: &Connection, login: &str) -> Result<bool, StorageError> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM credentials WHERE login = ?1)",
        params![login],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::where_clause::compile;

    #[test]
    fn where_values_are_data() {
        let store = Store::open(":memory:").unwrap();
        store.call_sync(|c| {
            let mut o = Object::new();
            o.insert("title".into(), Value::from("it's; DROP TABLE objects"));
            insert(c, "T", o, None).unwrap();
            let q = FindQuery {
                condition: compile("title = 'it''s; DROP TABLE objects'").unwrap(),
                page_size: 10,
                ..FindQuery::default()
            };
            assert_eq!(find(c, "T", &q).unwrap().len(), 1);
            assert_eq!(count(c, "T", None).unwrap(), 1);
        });
    }

    #[test]
    fn passwords_are_salted_hashes() {
        let store = Store::open(":memory:").unwrap();
        store.call_sync(|c| {
            let mut u = Object::new();
            u.insert("email".into(), Value::from("a@b"));
            let user = create_user(c, u, "pw", &[]).unwrap();
            assert!(!user.contains_key("password"));
            assert!(check_password(c, "A@B", "pw").unwrap().is_some());
            assert!(check_password(c, "a@b", "nope").unwrap().is_none());
            let stored: String = c
                .query_row("SELECT hash FROM credentials", [], |r| r.get(0))
                .unwrap();
            assert_ne!(stored, "pw");
        });
    }
}
