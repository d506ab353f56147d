//! Transactions: a [`UnitOfWork`] collects operations (create, update,
//! delete, their bulk forms, upsert, find, and relation changes), any of
//! which may use an earlier one's result through an [`OpRef`]; the backend
//! runs them all in one database transaction (`POST
//! transaction/unit-of-work`), all or nothing. Sent with
//! [`Data::transaction`], under the identity of that client.

use std::collections::HashMap;
use std::fmt;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::data::{Data, Query, to_json};
use super::error::SdkError;
use super::relations::Children;
use super::transport::{Call, Service, decode};

/// What an operation's result is, which decides what a reference to it
/// stands for when used as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One row (create, update, upsert): its `objectId`.
    Row,
    /// Rows (find) or ids (bulk create, bulk upsert): the whole list.
    List,
    /// Rows of a find: the list, or the `objectId` of one item.
    Found,
    /// A count or a time.
    Scalar,
}

/// A reference to the result of an operation of a [`UnitOfWork`], to use in
/// later operations of the same unit (as a value in a row, a row to update
/// or delete, a relation's parent or children) and to read its result with
/// [`TransactionResult::get`].
///
/// Used as a value, a reference to a created, updated or upserted row
/// stands for its `objectId`; [`OpRef::field`] picks another property and
/// [`OpRef::at`] one item of a list result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRef {
    id: String,
    table: String,
    shape: Shape,
    index: Option<usize>,
    prop: Option<String>,
}

impl OpRef {
    /// The operation's `opResultId`: the operation type lower-cased, the
    /// table and a count per type and table, as the JS SDK names them.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// let mut uow = UnitOfWork::new();
    /// let first = uow.create("Order", &serde_json::json!({"qty": 1}))?;
    /// let second = uow.create("Order", &serde_json::json!({"qty": 2}))?;
    /// assert_eq!(first.id(), "createOrder1");
    /// assert_eq!(second.id(), "createOrder2");
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The table the operation works on.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// let mut uow = UnitOfWork::new();
    /// let gone = uow.delete("Draft", "6F3C1A2B-0000-4000-8000-000000000001");
    /// assert_eq!(gone.table(), "Draft");
    /// ```
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The property `name` of the result (of each item, for a list), instead
    /// of the `objectId` a row reference stands for (`"propName"` in the
    /// reference sent).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let order = uow.create("Order", &json!({"number": 42}))?;
    /// let number = order.clone().field("number");
    /// uow.create("Invoice", &json!({"orderNumber": number}))?;
    /// assert_eq!(
    ///     serde_json::to_value(&number).unwrap(),
    ///     json!({"___ref": true, "opResultId": "createOrder1", "propName": "number"}),
    /// );
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.prop = Some(name.into());
        self
    }

    /// The item `index` (0-based) of a list result (`"resultIndex"` in the
    /// reference sent); an item of a find stands for its `objectId`.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Query, UnitOfWork};
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let found = uow.find("Order", &Query::new().where_clause("status = 'new'").sort_by("created"))?;
    /// let oldest = found.at(0);
    /// uow.update("Order", &oldest, &json!({"status": "next"}))?;
    /// assert_eq!(
    ///     serde_json::to_value(&oldest).unwrap(),
    ///     json!({"___ref": true, "opResultId": "findOrder1", "resultIndex": 0, "propName": "objectId"}),
    /// );
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl Serialize for OpRef {
    /// `{"___ref": true, "opResultId", "resultIndex"?, "propName"?}`, with
    /// `propName` `objectId` where the JS SDK puts it.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        map.insert("___ref".into(), Value::Bool(true));
        map.insert("opResultId".into(), Value::String(self.id.clone()));
        if let Some(i) = self.index {
            map.insert("resultIndex".into(), Value::from(i));
        }
        let prop = self.prop.clone().or_else(|| {
            let row =
                self.shape == Shape::Row || (self.shape == Shape::Found && self.index.is_some());
            row.then(|| "objectId".to_owned())
        });
        if let Some(p) = prop {
            map.insert("propName".into(), Value::String(p));
        }
        Value::Object(map).serialize(s)
    }
}

/// A row named by its id, or (in a [`UnitOfWork`]) by a reference to an
/// earlier operation's row. Built with `From`/`Into` from a `&str`, a
/// `String` or an [`OpRef`]; the methods taking `impl Into<ObjectRef>` do it
/// for you.
///
/// # Example
/// ```
/// use coderunner::sdk::{ObjectRef, UnitOfWork};
/// let by_id = ObjectRef::from("6F3C1A2B-0000-4000-8000-000000000001");
/// let mut uow = UnitOfWork::new();
/// let order = uow.create("Order", &serde_json::json!({"customer": "ACME"}))?;
/// let by_ref = ObjectRef::from(&order);
/// assert_ne!(by_id, by_ref);
/// uow.delete("Draft", by_id);
/// # Ok::<(), coderunner::sdk::SdkError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef(Value);

impl ObjectRef {
    pub(super) fn as_value(&self) -> &Value {
        &self.0
    }
}

impl From<&str> for ObjectRef {
    fn from(id: &str) -> Self {
        ObjectRef(Value::String(id.to_owned()))
    }
}

impl From<String> for ObjectRef {
    fn from(id: String) -> Self {
        ObjectRef(Value::String(id))
    }
}

impl From<&String> for ObjectRef {
    fn from(id: &String) -> Self {
        ObjectRef(Value::String(id.clone()))
    }
}

impl From<&OpRef> for ObjectRef {
    fn from(r: &OpRef) -> Self {
        ObjectRef(serde_json::to_value(r).unwrap_or(Value::Null))
    }
}

impl From<OpRef> for ObjectRef {
    fn from(r: OpRef) -> Self {
        ObjectRef::from(&r)
    }
}

/// One operation as sent.
#[derive(Debug, Clone, Serialize)]
struct Operation {
    #[serde(rename = "operationType")]
    kind: &'static str,
    table: String,
    #[serde(rename = "opResultId")]
    id: String,
    payload: Value,
}

/// Operations to run in one transaction, in order; nothing is sent until
/// [`Data::transaction`].
///
/// # Example
/// ```no_run
/// # async fn run(client: coderunner::sdk::Client) -> Result<(), coderunner::sdk::SdkError> {
/// use coderunner::sdk::{Children, Saved, UnitOfWork};
/// use serde_json::{json, Value};
/// let mut uow = UnitOfWork::new();
/// let order = uow.create("Order", &json!({"customer": "ACME"}))?;
/// let item = uow.create("Item", &json!({"sku": "X", "order": order.clone().field("objectId")}))?;
/// uow.add_relation("Order", &order, "items", Children::ids([&item]));
/// let done = client.data().transaction(&uow).await?;
/// let saved: Saved<Value> = done.get(&order)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct UnitOfWork {
    ops: Vec<Operation>,
    /// Operations per (type, table), for the JS SDK's opResultIds.
    counters: HashMap<String, usize>,
}

impl UnitOfWork {
    /// An empty unit of work. Sending it empty is
    /// [`SdkError::InvalidArgument`].
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// let uow = UnitOfWork::new();
    /// assert!(uow.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many operations it holds.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// let mut uow = UnitOfWork::new();
    /// uow.delete("Draft", "A1");
    /// uow.delete("Draft", "B2");
    /// assert_eq!(uow.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether it holds no operation.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// let mut uow = UnitOfWork::new();
    /// assert!(uow.is_empty());
    /// uow.delete("Draft", "A1");
    /// assert!(!uow.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn push(&mut self, kind: &'static str, table: &str, shape: Shape, payload: Value) -> OpRef {
        let stack = format!("{}{table}", kind.to_ascii_lowercase());
        let n = self.counters.entry(stack.clone()).or_default();
        *n += 1;
        let id = format!("{stack}{n}");
        self.ops.push(Operation {
            kind,
            table: table.to_owned(),
            id: id.clone(),
            payload,
        });
        OpRef {
            id,
            table: table.to_owned(),
            shape,
            index: None,
            prop: None,
        }
    }

    /// Creates a row of `table` (`CREATE`, the row as the payload); its
    /// result is the saved row. `item` must serialize to a JSON object
    /// ([`SdkError::InvalidArgument`] otherwise, at once).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::{Saved, UnitOfWork};
    /// use serde_json::{json, Value};
    /// let mut uow = UnitOfWork::new();
    /// let order = uow.create("Order", &json!({"customer": "ACME"}))?;
    /// let done = ctx.caller().data().transaction(&uow).await?;
    /// let row: Saved<Value> = done.get(&order)?;
    /// # Ok(()) }
    /// ```
    pub fn create<T: Serialize + ?Sized>(
        &mut self,
        table: &str,
        item: &T,
    ) -> Result<OpRef, SdkError> {
        let payload = object(to_json(item)?)?;
        Ok(self.push("CREATE", table, Shape::Row, payload))
    }

    /// Creates several rows (`CREATE_BULK`, an array of rows); its result is
    /// their ids, in order. Each item must serialize to a JSON object.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::UnitOfWork;
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let items = uow.bulk_create("Item", &[json!({"sku": "X"}), json!({"sku": "Y"})])?;
    /// let done = ctx.caller().data().transaction(&uow).await?;
    /// let ids: Vec<String> = done.get(&items)?;
    /// # Ok(()) }
    /// ```
    pub fn bulk_create<T: Serialize>(
        &mut self,
        table: &str,
        items: &[T],
    ) -> Result<OpRef, SdkError> {
        let rows = items
            .iter()
            .map(|i| to_json(i).and_then(object))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.push("CREATE_BULK", table, Shape::List, Value::Array(rows)))
    }

    /// Updates the row `target` (an id, or a reference to an earlier row)
    /// with `changes` (`UPDATE`, the changes plus `objectId`); its result is
    /// the whole row. `changes` must serialize to a JSON object.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// uow.update("Order", "6F3C1A2B-0000-4000-8000-000000000001", &json!({"status": "paid"}))?;
    /// let invoice = uow.create("Invoice", &json!({"total": 10}))?;
    /// uow.update("Invoice", &invoice, &json!({"total": 12}))?; // the row created above
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn update<C: Serialize + ?Sized>(
        &mut self,
        table: &str,
        target: impl Into<ObjectRef>,
        changes: &C,
    ) -> Result<OpRef, SdkError> {
        let mut payload = object(to_json(changes)?)?;
        if let Value::Object(map) = &mut payload {
            map.insert("objectId".into(), target.into().0);
        }
        Ok(self.push("UPDATE", table, Shape::Row, payload))
    }

    /// Creates the row, or updates it when its `objectId` exists (`UPSERT`,
    /// the row as the payload); its result is the row. `item` must serialize
    /// to a JSON object.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let profile = uow.upsert("Profile", &json!({"objectId": "P-42", "theme": "dark"}))?;
    /// assert_eq!(profile.id(), "upsertProfile1");
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn upsert<T: Serialize + ?Sized>(
        &mut self,
        table: &str,
        item: &T,
    ) -> Result<OpRef, SdkError> {
        let payload = object(to_json(item)?)?;
        Ok(self.push("UPSERT", table, Shape::Row, payload))
    }

    /// Deletes the row `target`, an id or a reference to an earlier row
    /// (`DELETE`, the payload the id or the reference).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UnitOfWork;
    /// let mut uow = UnitOfWork::new();
    /// uow.delete("Draft", "6F3C1A2B-0000-4000-8000-000000000001");
    /// ```
    pub fn delete(&mut self, table: &str, target: impl Into<ObjectRef>) -> OpRef {
        self.push("DELETE", table, Shape::Scalar, target.into().0)
    }

    /// Applies `changes` to every row matching `where_clause`
    /// (`UPDATE_BULK`, `{"conditional": where, "changes"}`); its result is
    /// the count.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::UnitOfWork;
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let closed = uow.bulk_update_where("Order", "status = 'open'", &json!({"status": "closed"}))?;
    /// let done = ctx.superuser().data().transaction(&uow).await?;
    /// let count: u64 = done.get(&closed)?;
    /// # Ok(()) }
    /// ```
    pub fn bulk_update_where<C: Serialize + ?Sized>(
        &mut self,
        table: &str,
        where_clause: &str,
        changes: &C,
    ) -> Result<OpRef, SdkError> {
        let payload = json!({"conditional": where_clause, "changes": object(to_json(changes)?)?});
        Ok(self.push("UPDATE_BULK", table, Shape::Scalar, payload))
    }

    /// Applies `changes` to the rows `targets` (ids, or the rows or ids an
    /// earlier find or bulk create returned, as [`Children`] names them)
    /// (`UPDATE_BULK`, `{"unconditional", "changes"}`, or `{"conditional"}`
    /// for [`Children::Where`]); its result is the count.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Children, Query, UnitOfWork};
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// uow.bulk_update("Order", Children::ids(["A1", "B2"]), &json!({"flag": true}))?;
    /// let stale = uow.find("Order", &Query::new().where_clause("updated < 1700000000000"))?;
    /// uow.bulk_update("Order", Children::Results(stale), &json!({"status": "stale"}))?;
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn bulk_update<C: Serialize + ?Sized>(
        &mut self,
        table: &str,
        targets: Children,
        changes: &C,
    ) -> Result<OpRef, SdkError> {
        let mut payload = selection(targets);
        payload.insert("changes".into(), object(to_json(changes)?)?);
        Ok(self.push("UPDATE_BULK", table, Shape::Scalar, Value::Object(payload)))
    }

    /// Deletes the rows `targets` names (`DELETE_BULK`, `{"conditional"}` or
    /// `{"unconditional"}`); its result is the count.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Children, UnitOfWork};
    /// let mut uow = UnitOfWork::new();
    /// uow.bulk_delete("Draft", Children::where_clause("updated < 1700000000000"));
    /// uow.bulk_delete("Draft", Children::ids(["A1", "B2"]));
    /// ```
    pub fn bulk_delete(&mut self, table: &str, targets: Children) -> OpRef {
        let payload = Value::Object(selection(targets));
        self.push("DELETE_BULK", table, Shape::Scalar, payload)
    }

    /// Finds rows (`FIND`, the [`Query`] as `{whereClause, pageSize, offset,
    /// properties, groupBy, havingClause, queryOptions}`); its result is the
    /// rows (see [`OpRef::at`]). A page size out of 1..=100 is
    /// [`SdkError::InvalidArgument`] at once.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::{Query, Saved, UnitOfWork};
    /// use serde_json::Value;
    /// let mut uow = UnitOfWork::new();
    /// let open = uow.find("Order", &Query::new().where_clause("status = 'open'").page_size(100))?;
    /// let done = ctx.caller().data().transaction(&uow).await?;
    /// let rows: Vec<Saved<Value>> = done.get(&open)?;
    /// # Ok(()) }
    /// ```
    pub fn find(&mut self, table: &str, query: &Query) -> Result<OpRef, SdkError> {
        let payload = query.find_payload()?;
        Ok(self.push("FIND", table, Shape::Found, payload))
    }

    fn relation(
        &mut self,
        kind: &'static str,
        table: &str,
        parent: impl Into<ObjectRef>,
        column: &str,
        children: Children,
    ) -> OpRef {
        let mut payload = selection(children);
        payload.insert("parentObject".into(), parent.into().0);
        payload.insert("relationColumn".into(), Value::String(column.to_owned()));
        self.push(kind, table, Shape::Scalar, Value::Object(payload))
    }

    /// Makes `children` the only children of `parent`'s `column`
    /// (`SET_RELATION`, `{parentObject, relationColumn, conditional or
    /// unconditional}`); its result is a count. `parent` and the children may
    /// be references to earlier operations.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Children, UnitOfWork};
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let order = uow.create("Order", &json!({"customer": "ACME"}))?;
    /// let items = uow.bulk_create("Item", &[json!({"sku": "X"}), json!({"sku": "Y"})])?;
    /// uow.set_relation("Order", &order, "items", Children::Results(items));
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn set_relation(
        &mut self,
        table: &str,
        parent: impl Into<ObjectRef>,
        column: &str,
        children: Children,
    ) -> OpRef {
        self.relation("SET_RELATION", table, parent, column, children)
    }

    /// Adds `children` to `parent`'s `column` (`ADD_RELATION`, the same
    /// payload as [`UnitOfWork::set_relation`]); its result is a count.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Children, UnitOfWork};
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// let item = uow.create("Item", &json!({"sku": "Z"}))?;
    /// uow.add_relation("Order", "6F3C1A2B-0000-4000-8000-000000000001", "items", Children::ids([&item]));
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn add_relation(
        &mut self,
        table: &str,
        parent: impl Into<ObjectRef>,
        column: &str,
        children: Children,
    ) -> OpRef {
        self.relation("ADD_RELATION", table, parent, column, children)
    }

    /// Removes `children` from `parent`'s `column` (`DELETE_RELATION`, the
    /// same payload as [`UnitOfWork::set_relation`]); the child rows stay.
    /// Its result is a count.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Children, UnitOfWork};
    /// let mut uow = UnitOfWork::new();
    /// uow.delete_relation("Order", "6F3C1A2B-0000-4000-8000-000000000001", "items", Children::where_clause("sku = 'X'"));
    /// ```
    pub fn delete_relation(
        &mut self,
        table: &str,
        parent: impl Into<ObjectRef>,
        column: &str,
        children: Children,
    ) -> OpRef {
        self.relation("DELETE_RELATION", table, parent, column, children)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.ops.iter().position(|o| o.id == id)
    }
}

/// `conditional` (a where clause) or `unconditional` (ids, references, or a
/// reference to a list).
fn selection(children: Children) -> Map<String, Value> {
    let mut map = Map::new();
    match children {
        Children::Where(clause) => {
            map.insert("conditional".into(), Value::String(clause));
        }
        Children::Ids(ids) => {
            map.insert(
                "unconditional".into(),
                Value::Array(ids.into_iter().map(|r| r.0).collect()),
            );
        }
        Children::Results(r) => {
            map.insert(
                "unconditional".into(),
                serde_json::to_value(&r).unwrap_or(Value::Null),
            );
        }
    }
    map
}

fn object(v: Value) -> Result<Value, SdkError> {
    match v {
        Value::Object(_) => Ok(v),
        _ => Err(SdkError::invalid(
            "item",
            "a row must serialize to a JSON object",
        )),
    }
}

/// The results of a transaction that committed.
#[derive(Debug, Clone)]
pub struct TransactionResult {
    results: HashMap<String, Value>,
}

impl TransactionResult {
    /// The raw result of `op` (the `result` of its entry in the reply), if
    /// the backend returned one.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::UnitOfWork;
    /// let mut uow = UnitOfWork::new();
    /// let gone = uow.delete("Draft", "6F3C1A2B-0000-4000-8000-000000000001");
    /// let done = ctx.caller().data().transaction(&uow).await?;
    /// if let Some(value) = done.value(&gone) {
    ///     println!("delete answered {value}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn value(&self, op: &OpRef) -> Option<&Value> {
        self.results.get(&op.id)
    }

    /// The result of `op` as `R`: a [`super::Saved`] row for create, update
    /// and upsert, rows for find, ids for bulk create, a count for bulk
    /// update and delete and for relation changes. No result for `op`, or a
    /// result of another shape, is [`SdkError::Decode`].
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::{Children, Saved, UnitOfWork};
    /// use serde_json::{json, Value};
    /// let mut uow = UnitOfWork::new();
    /// let order = uow.create("Order", &json!({"customer": "ACME"}))?;
    /// let linked = uow.add_relation("Order", &order, "items", Children::ids(["ITEM-1"]));
    /// let done = ctx.caller().data().transaction(&uow).await?;
    /// let row: Saved<Value> = done.get(&order)?;
    /// let added: u64 = done.get(&linked)?;
    /// # Ok(()) }
    /// ```
    pub fn get<R: DeserializeOwned>(&self, op: &OpRef) -> Result<R, SdkError> {
        let value = self.value(op).cloned().ok_or_else(|| SdkError::Decode {
            service: Service::Data.as_str(),
            message: format!("the transaction returned no result for {}", op.id),
        })?;
        decode(Service::Data, value)
    }
}

/// Which operation of a transaction failed, and why; nothing was written.
/// Met as [`SdkError::Transaction`] from [`Data::transaction`].
///
/// # Example
/// ```
/// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// use coderunner::sdk::{SdkError, UnitOfWork};
/// let mut uow = UnitOfWork::new();
/// uow.create("Audit", &serde_json::json!({"entry": "x"}))?;
/// if let Err(SdkError::Transaction(failed)) = ctx.caller().data().transaction(&uow).await {
///     if failed.code == Some(1011) {
///         println!("{} may not be created by this user", failed.table);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionError {
    /// The failed operation's `opResultId`.
    pub op_result_id: String,
    /// Its position in the [`UnitOfWork`] (0-based), when the backend named
    /// one of its operations.
    pub index: Option<usize>,
    /// Its type (`CREATE`, `UPDATE_BULK`, `SET_RELATION`...).
    pub operation_type: String,
    /// Its table.
    pub table: String,
    /// The backend's error code, e.g. 1011 for a refused create.
    pub code: Option<i64>,
    /// The backend's message.
    pub message: String,
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = self.index.map_or_else(|| "?".to_owned(), |i| i.to_string());
        write!(
            f,
            "transaction operation {index} ({}, {} on {}) failed",
            self.op_result_id, self.operation_type, self.table
        )?;
        if let Some(code) = self.code {
            write!(f, " with {code}")?;
        }
        write!(f, ": {}; nothing was written", self.message)
    }
}

impl std::error::Error for TransactionError {}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<ReplyError>,
    #[serde(default)]
    results: Option<HashMap<String, ReplyResult>>,
}

#[derive(Deserialize)]
struct ReplyError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    operation: Option<ReplyOperation>,
}

#[derive(Deserialize)]
struct ReplyOperation {
    #[serde(rename = "opResultId", default)]
    op_result_id: Option<String>,
    #[serde(rename = "operationType", default)]
    operation_type: Option<String>,
    #[serde(default)]
    table: Option<String>,
}

#[derive(Deserialize)]
struct ReplyResult {
    #[serde(default)]
    result: Value,
}

impl Data<'_> {
    /// Runs `uow` as one transaction (`POST transaction/unit-of-work`) as
    /// this client's identity. When an operation fails, nothing is written
    /// and the error is [`SdkError::Transaction`], naming the operation
    /// ([`TransactionError`]: its index, type, table, code such as 1011, and
    /// message). An empty unit of work is [`SdkError::InvalidArgument`]
    /// before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::{SdkError, UnitOfWork};
    /// use serde_json::json;
    /// let mut uow = UnitOfWork::new();
    /// uow.create("Order", &json!({"customer": "ACME"}))?;
    /// uow.create("Ledger", &json!({"entry": "order"}))?;
    /// match ctx.caller().data().transaction(&uow).await {
    ///     Ok(_) => {}
    ///     Err(SdkError::Transaction(failed)) => {
    ///         println!("operation {:?} on {} failed: {}", failed.index, failed.table, failed.message);
    ///     }
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn transaction(&self, uow: &UnitOfWork) -> Result<TransactionResult, SdkError> {
        if uow.is_empty() {
            return Err(SdkError::invalid(
                "uow",
                "the unit of work has no operation",
            ));
        }
        let body = json!({
            "isolationLevelEnum": "REPEATABLE_READ",
            "operations": uow.ops,
        });
        let call =
            Call::new(Service::Data, Method::POST, ["transaction", "unit-of-work"]).body(body);
        let reply: Reply = self.client().send(call).await?;
        if reply.success {
            let results = reply
                .results
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.result))
                .collect();
            return Ok(TransactionResult { results });
        }
        let error = reply.error.unwrap_or(ReplyError {
            code: None,
            message: None,
            operation: None,
        });
        let operation = error.operation.unwrap_or(ReplyOperation {
            op_result_id: None,
            operation_type: None,
            table: None,
        });
        let op_result_id = operation.op_result_id.unwrap_or_default();
        Err(SdkError::Transaction(Box::new(TransactionError {
            index: uow.index_of(&op_result_id),
            op_result_id,
            operation_type: operation.operation_type.unwrap_or_default(),
            table: operation.table.unwrap_or_default(),
            code: error.code,
            message: error.message.unwrap_or_else(|| "no message".to_owned()),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations as the JS SDK 8.0.0 composes them (`composePayload`,
    /// `OpResult.toJSON`, `OpResultValueReference.toJSON`).
    #[test]
    fn operations_are_composed_as_the_js_sdk_does() {
        let mut uow = UnitOfWork::new();
        let post = uow.create("Post", &json!({"title": "t"})).unwrap();
        let second = uow.create("Post", &json!({"title": "u"})).unwrap();
        let found = uow
            .find("Post", &Query::new().where_clause("a = 1").sort_by("b"))
            .unwrap();
        uow.update(
            "Post",
            &second,
            &json!({"title": post.clone().field("title")}),
        )
        .unwrap();
        uow.set_relation("Latest_post", "L1", "post", Children::ids([&post]));
        uow.bulk_delete("Post", Children::Results(found.clone()));
        uow.delete("Post", found.clone().at(0));
        let ops = serde_json::to_value(&uow.ops).unwrap();
        assert_eq!(
            ops,
            json!([
                {"operationType": "CREATE", "table": "Post", "opResultId": "createPost1", "payload": {"title": "t"}},
                {"operationType": "CREATE", "table": "Post", "opResultId": "createPost2", "payload": {"title": "u"}},
                {"operationType": "FIND", "table": "Post", "opResultId": "findPost1",
                 "payload": {"whereClause": "a = 1", "queryOptions": {"sortBy": ["b"]}}},
                {"operationType": "UPDATE", "table": "Post", "opResultId": "updatePost1",
                 "payload": {"title": {"___ref": true, "opResultId": "createPost1", "propName": "title"},
                             "objectId": {"___ref": true, "opResultId": "createPost2", "propName": "objectId"}}},
                {"operationType": "SET_RELATION", "table": "Latest_post", "opResultId": "set_relationLatest_post1",
                 "payload": {"parentObject": "L1", "relationColumn": "post",
                             "unconditional": [{"___ref": true, "opResultId": "createPost1", "propName": "objectId"}]}},
                {"operationType": "DELETE_BULK", "table": "Post", "opResultId": "delete_bulkPost1",
                 "payload": {"unconditional": {"___ref": true, "opResultId": "findPost1"}}},
                {"operationType": "DELETE", "table": "Post", "opResultId": "deletePost1",
                 "payload": {"___ref": true, "opResultId": "findPost1", "resultIndex": 0, "propName": "objectId"}},
            ])
        );
        assert_eq!(uow.index_of("findPost1"), Some(2));
        assert!(
            uow.create("Post", &json!([1])).is_err(),
            "a row is an object"
        );
        assert!(uow.find("Post", &Query::new().page_size(0)).is_err());
    }

    #[test]
    fn a_failed_operation_is_named_in_the_error() {
        let e = TransactionError {
            op_result_id: "createAudit_log1".into(),
            index: Some(2),
            operation_type: "CREATE".into(),
            table: "Audit_log".into(),
            code: Some(1011),
            message: "User has no permission to create entity".into(),
        };
        assert_eq!(
            e.to_string(),
            "transaction operation 2 (createAudit_log1, CREATE on Audit_log) failed with 1011: \
             User has no permission to create entity; nothing was written"
        );
        assert_eq!(SdkError::Transaction(Box::new(e)).code(), Some(1011));
    }
}
