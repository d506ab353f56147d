//! The Data service: rows of the app's tables as the user's serde types (or
//! `serde_json::Value`), with the system fields in [`Saved`].

use std::marker::PhantomData;

use reqwest::Method;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::Client;
use super::error::SdkError;
use super::transport::{Call, Service};

/// A row as stored by the backend: the system fields plus the user's fields
/// (`T`, flattened).
///
/// `T` should not use `#[serde(deny_unknown_fields)]` (the system fields sit
/// beside its own), and should not declare the system fields itself.
///
/// # Example
/// ```
/// use coderunner::sdk::Saved;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Order { item: String, qty: u32 }
/// let row: Saved<Order> = serde_json::from_str(
///     r#"{"objectId":"A1","ownerId":null,"created":1,"updated":null,"___class":"Order","item":"tea","qty":2}"#,
/// ).unwrap();
/// assert_eq!(row.object_id, "A1");
/// assert_eq!(row.data.qty, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved<T> {
    /// The row's id (an uppercase GUID).
    #[serde(rename = "objectId")]
    pub object_id: String,
    /// The user whose token created the row; `None` when created without one.
    #[serde(rename = "ownerId", default)]
    pub owner_id: Option<String>,
    /// Creation time, ms since the epoch.
    #[serde(default, deserialize_with = "lenient_ms")]
    pub created: Option<i64>,
    /// Last update time, ms since the epoch; `None` until the first update.
    #[serde(default, deserialize_with = "lenient_ms")]
    pub updated: Option<i64>,
    /// The table name.
    #[serde(rename = "___class", default)]
    pub class: Option<String>,
    /// The user's fields.
    #[serde(flatten)]
    pub data: T,
}

impl<T> Saved<T> {
    /// The creation time ([`Saved::created`] as a `SystemTime`), when the
    /// backend gave one. No request is made.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Saved;
    /// let row: Saved<serde_json::Value> =
    ///     serde_json::from_str(r#"{"objectId":"A1","created":1700000000000,"updated":null}"#).unwrap();
    /// let created = row.created_at().unwrap();
    /// assert_eq!(created, std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_000));
    /// ```
    pub fn created_at(&self) -> Option<std::time::SystemTime> {
        self.created.and_then(super::dates::from_ms)
    }

    /// The time of the last update ([`Saved::updated`] as a `SystemTime`):
    /// `None` for a row never updated. No request is made.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Saved;
    /// let row: Saved<serde_json::Value> =
    ///     serde_json::from_str(r#"{"objectId":"A1","created":1700000000000,"updated":null}"#).unwrap();
    /// assert!(row.updated_at().is_none());
    /// ```
    pub fn updated_at(&self) -> Option<std::time::SystemTime> {
        self.updated.and_then(super::dates::from_ms)
    }
}

/// Accepts ms as an integer, a float or a numeric string.
fn lenient_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

/// A query for [`Table::find`]: `where`, paging, sorting, properties
/// (including aggregates such as `Sum(qty) as total`), grouping, `having`,
/// `distinct`, and the relations to load with each row.
///
/// # Example
/// ```
/// use coderunner::sdk::Query;
/// let q = Query::new().where_clause("qty > 1").sort_by("created desc").page_size(50);
/// // Totals per customer, only the big ones:
/// let totals = Query::new()
///     .props(["customer", "Sum(qty) as total", "Count(objectId)"])
///     .group_by(["customer"])
///     .having("Sum(qty) > 10");
/// // Each order with its `items` relation (up to 20 children each):
/// let with_items = Query::new().load_relations(["items"]).relations_page_size(20);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    where_clause: Option<String>,
    page_size: Option<u32>,
    offset: Option<u32>,
    sort_by: Vec<String>,
    props: Vec<String>,
    group_by: Vec<String>,
    having: Option<String>,
    distinct: bool,
    /// Relation columns to load with each row (`loadRelations`).
    relations: Vec<String>,
    relations_depth: Option<u32>,
    relations_page_size: Option<u32>,
}

impl Query {
    /// A query for the first page (backend default: 10 rows) of all rows.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// let first_ten = ctx.caller().table::<serde_json::Value>("Order").find(&Query::new()).await?;
    /// # Ok(()) }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The `where` clause (Backendless SQL-92 subset), e.g. `"qty > 1"`, sent
    /// as `?where=`. It is not checked here: a clause the backend cannot
    /// parse comes back as [`SdkError::Backend`] with code 1017.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let q = Query::new().where_clause("status = 'open' and qty > 1");
    /// ```
    pub fn where_clause(mut self, clause: impl Into<String>) -> Self {
        self.where_clause = Some(clause.into());
        self
    }

    /// Rows per page, 1..=100 (`pageSize`), checked when the query is sent:
    /// a size outside is [`SdkError::InvalidArgument`] before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::{Query, SdkError};
    /// let client = ctx.caller();
    /// let orders = client.table::<serde_json::Value>("Order");
    /// let page = orders.find(&Query::new().page_size(100)).await?;
    /// let too_big = orders.find(&Query::new().page_size(500)).await;
    /// assert!(matches!(too_big, Err(SdkError::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Rows to skip (`offset`): with [`Query::page_size`], the way to page.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let third_page = Query::new().sort_by("created").page_size(50).offset(100);
    /// ```
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Adds a sort key, e.g. `"name"` or `"created desc"` (`sortBy`, the keys
    /// joined by commas in the order added).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let q = Query::new().sort_by("customer").sort_by("created desc");
    /// ```
    pub fn sort_by(mut self, key: impl Into<String>) -> Self {
        self.sort_by.push(key.into());
        self
    }

    /// Adds properties to return (`props`; all when none are given),
    /// including aggregates such as `"Sum(qty) as total"`. Rows with only some
    /// properties may not decode as `T`: read them with [`Table::find_as`].
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let names_only = Query::new().props(["name", "email"]);
    /// ```
    pub fn props<I, S>(mut self, props: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.props.extend(props.into_iter().map(Into::into));
        self
    }

    /// Groups the results by these properties (`groupBy`, with aggregates in
    /// [`Query::props`]).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let per_customer = Query::new()
    ///     .props(["customer", "Count(objectId) as orders"])
    ///     .group_by(["customer"]);
    /// ```
    pub fn group_by<I, S>(mut self, props: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.group_by.extend(props.into_iter().map(Into::into));
        self
    }

    /// A condition on the grouped results, e.g. `"Sum(qty) > 10"` (`having`;
    /// the aggregate must be among the properties).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let big_customers = Query::new()
    ///     .props(["customer", "Sum(qty) as total"])
    ///     .group_by(["customer"])
    ///     .having("Sum(qty) > 10");
    /// ```
    pub fn having(mut self, clause: impl Into<String>) -> Self {
        self.having = Some(clause.into());
        self
    }

    /// Only distinct results of the properties asked for (`distinct=true`).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// #[derive(serde::Deserialize)]
    /// struct City { city: String }
    /// let cities: Vec<City> = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Customer")
    ///     .find_as(&Query::new().props(["city"]).distinct(true))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn distinct(mut self, distinct: bool) -> Self {
        self.distinct = distinct;
        self
    }

    /// Relation columns whose children are loaded into each row (`"*"`: all),
    /// sent as `loadRelations=a,b`. `T` needs a field for each column to see
    /// the children.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { items: Vec<serde_json::Value> }
    /// let client = ctx.caller();
    /// let orders = client.table::<Order>("Order").find(&Query::new().load_relations(["items"])).await?;
    /// # Ok(()) }
    /// ```
    pub fn load_relations<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.relations.extend(columns.into_iter().map(Into::into));
        self
    }

    /// Loads every relation down to `depth` levels (`relationsDepth`).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// // Each order's relations, and their relations in turn.
    /// let q = Query::new().relations_depth(2);
    /// ```
    pub fn relations_depth(mut self, depth: u32) -> Self {
        self.relations_depth = Some(depth);
        self
    }

    /// How many children each loaded relation holds, 1..=100
    /// (`relationsPageSize`, backend default: 10); page through the rest with
    /// [`Table::load_relations`]. A size outside is
    /// [`SdkError::InvalidArgument`] when the query is sent.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Query;
    /// let q = Query::new().load_relations(["items"]).relations_page_size(100);
    /// ```
    pub fn relations_page_size(mut self, size: u32) -> Self {
        self.relations_page_size = Some(size);
        self
    }

    /// The query as a transaction's FIND payload.
    pub(super) fn find_payload(&self) -> Result<Value, SdkError> {
        self.check()?;
        let mut payload = serde_json::Map::new();
        let mut options = serde_json::Map::new();
        if let Some(clause) = &self.where_clause {
            payload.insert("whereClause".into(), clause.as_str().into());
        }
        if let Some(size) = self.page_size {
            payload.insert("pageSize".into(), size.into());
        }
        if let Some(offset) = self.offset {
            payload.insert("offset".into(), offset.into());
        }
        if !self.props.is_empty() {
            payload.insert("properties".into(), self.props.clone().into());
        }
        if !self.group_by.is_empty() {
            payload.insert("groupBy".into(), self.group_by.clone().into());
        }
        if let Some(having) = &self.having {
            payload.insert("havingClause".into(), having.as_str().into());
        }
        if self.distinct {
            payload.insert("distinct".into(), true.into());
        }
        if !self.sort_by.is_empty() {
            options.insert("sortBy".into(), self.sort_by.clone().into());
        }
        if !self.relations.is_empty() {
            options.insert("related".into(), self.relations.clone().into());
        }
        if let Some(depth) = self.relations_depth {
            options.insert("relationsDepth".into(), depth.into());
        }
        if let Some(size) = self.relations_page_size {
            options.insert("relationsPageSize".into(), size.into());
        }
        payload.insert("queryOptions".into(), Value::Object(options));
        Ok(Value::Object(payload))
    }

    fn check(&self) -> Result<(), SdkError> {
        if let Some(size) = self.page_size {
            if !(1..=100).contains(&size) {
                return Err(SdkError::invalid(
                    "page_size",
                    format!("{size} is outside the allowed 1..=100"),
                ));
            }
        }
        if let Some(size) = self.relations_page_size {
            if !(1..=100).contains(&size) {
                return Err(SdkError::invalid(
                    "relations_page_size",
                    format!("{size} is outside the allowed 1..=100"),
                ));
            }
        }
        Ok(())
    }

    /// Only the parts a find by id takes: the relations to load.
    fn apply_relations(&self, mut call: Call) -> Call {
        if !self.relations.is_empty() {
            call = call.query("loadRelations", self.relations.join(","));
        }
        if let Some(depth) = self.relations_depth {
            call = call.query("relationsDepth", depth);
        }
        if let Some(size) = self.relations_page_size {
            call = call.query("relationsPageSize", size);
        }
        call
    }

    pub(crate) fn apply(&self, mut call: Call) -> Result<Call, SdkError> {
        self.check()?;
        if let Some(clause) = &self.where_clause {
            call = call.query("where", clause);
        }
        if let Some(size) = self.page_size {
            call = call.query("pageSize", size);
        }
        if let Some(offset) = self.offset {
            call = call.query("offset", offset);
        }
        if !self.sort_by.is_empty() {
            call = call.query("sortBy", self.sort_by.join(","));
        }
        if !self.props.is_empty() {
            call = call.query("props", self.props.join(","));
        }
        if !self.group_by.is_empty() {
            call = call.query("groupBy", self.group_by.join(","));
        }
        if let Some(having) = &self.having {
            call = call.query("having", having);
        }
        if self.distinct {
            call = call.query("distinct", true);
        }
        Ok(self.apply_relations(call))
    }
}

/// The Data service of a [`Client`] ([`Client::data`]): its tables and
/// transactions, as the client's identity.
///
/// # Example
/// ```
/// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// let client = ctx.caller();
/// let data = client.data();
/// let orders = data.table::<serde_json::Value>("Order").count(None).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    client: &'a Client,
}

impl<'a> Data<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Data { client }
    }

    pub(super) fn client(&self) -> &'a Client {
        self.client
    }

    /// The table `name`, with rows of type `T`; the same as
    /// [`Client::table`]. No request is made; an empty name is
    /// [`SdkError::InvalidArgument`] at the first call.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.caller();
    /// let orders = client.data().table::<serde_json::Value>("Order");
    /// let open = orders.count(Some("status = 'open'")).await?;
    /// # Ok(()) }
    /// ```
    pub fn table<T>(&self, name: &str) -> Table<'a, T> {
        Table {
            client: self.client,
            name: name.to_owned(),
            rows: PhantomData,
        }
    }
}

/// One table, with rows of type `T` (a serde type or `serde_json::Value`),
/// from [`Client::table`] or [`Data::table`].
///
/// # Example
/// ```
/// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Order { item: String, qty: u32 }
/// let client = ctx.caller();
/// let orders = client.table::<Order>("Order");
/// let saved = orders.create(&Order { item: "tea".into(), qty: 1 }).await?;
/// orders.update(&saved.object_id, &serde_json::json!({"qty": 2})).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Table<'a, T> {
    client: &'a Client,
    name: String,
    rows: PhantomData<fn() -> T>,
}

impl<T> Table<'_, T> {
    /// The table's name.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.caller();
    /// assert_eq!(client.table::<serde_json::Value>("Order").name(), "Order");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn client(&self) -> &Client {
        self.client
    }

    pub(super) fn call<I: IntoIterator<Item = String>>(
        &self,
        method: Method,
        rest: I,
    ) -> Result<Call, SdkError> {
        SdkError::non_empty("table", "table name", &self.name)?;
        let segments = ["data".to_owned(), self.name.clone()]
            .into_iter()
            .chain(rest);
        Ok(Call::new(Service::Data, method, segments))
    }

    fn bulk_call(&self, method: Method) -> Result<Call, SdkError> {
        SdkError::non_empty("table", "table name", &self.name)?;
        Ok(Call::new(
            Service::Data,
            method,
            ["data".to_owned(), "bulk".to_owned(), self.name.clone()],
        ))
    }

    /// How many rows match `where_clause` (all rows when `None`)
    /// (`GET data/{table}/count?where=`). Needs the table's find permission
    /// for this client's identity (1013 otherwise).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.caller();
    /// let orders = client.table::<serde_json::Value>("Order");
    /// let all = orders.count(None).await?;
    /// let open = orders.count(Some("status = 'open'")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn count(&self, where_clause: Option<&str>) -> Result<u64, SdkError> {
        let mut call = self.call(Method::GET, ["count".to_owned()])?;
        if let Some(clause) = where_clause {
            call = call.query("where", clause);
        }
        self.client.send(call).await
    }

    /// Deletes the row `id` (`DELETE data/{table}/{id}`); returns the
    /// deletion time (ms since the epoch). An empty id is
    /// [`SdkError::InvalidArgument`] before any request; an identity without
    /// the table's delete permission gets 1014.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let deleted_at = ctx.caller().table::<serde_json::Value>("Order").delete("6F3C1A2B-0000-4000-8000-000000000001").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, id: &str) -> Result<i64, SdkError> {
        check_id(id)?;
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(rename = "deletionTime")]
            deletion_time: i64,
        }
        let reply: Deleted = self
            .client
            .send(self.call(Method::DELETE, [id.to_owned()])?)
            .await?;
        Ok(reply.deletion_time)
    }

    /// Applies `changes` to every row matching `where_clause`
    /// (`PUT data/bulk/{table}?where=`, the changes as the body); returns how
    /// many rows were updated. Needs the table's update permission (1012
    /// otherwise).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::json;
    /// let closed = ctx
    ///     .superuser()
    ///     .table::<serde_json::Value>("Order")
    ///     .bulk_update("status = 'open' and created < 1700000000000", &json!({"status": "closed"}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn bulk_update<C: Serialize + ?Sized>(
        &self,
        where_clause: &str,
        changes: &C,
    ) -> Result<u64, SdkError> {
        let call = self
            .bulk_call(Method::PUT)?
            .query("where", where_clause)
            .body(to_json(changes)?);
        self.client.send(call).await
    }

    /// One page of results of `query` as `R`: for results that are not rows
    /// of the table, such as aggregates and groups.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(client: coderunner::sdk::Client) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// #[derive(serde::Deserialize)]
    /// struct Total { customer: String, total: f64 }
    /// let totals: Vec<Total> = client
    ///     .table::<serde_json::Value>("Order")
    ///     .find_as(&Query::new().props(["customer", "Sum(qty) as total"]).group_by(["customer"]))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn find_as<R: DeserializeOwned>(&self, query: &Query) -> Result<Vec<R>, SdkError> {
        let call = query.apply(self.call(Method::GET, [])?)?;
        self.client.send(call).await
    }

    /// Deletes every row matching `where_clause`
    /// (`DELETE data/bulk/{table}?where=`); returns how many. Needs the
    /// table's delete permission (1014 otherwise).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let removed = ctx.superuser().table::<serde_json::Value>("Draft").bulk_delete("updated < 1700000000000").await?;
    /// # Ok(()) }
    /// ```
    pub async fn bulk_delete(&self, where_clause: &str) -> Result<u64, SdkError> {
        let call = self.bulk_call(Method::DELETE)?.query("where", where_clause);
        self.client.send(call).await
    }
}

impl<T: Serialize + DeserializeOwned> Table<'_, T> {
    /// Creates a row (`POST data/{table}`, `___class` set to the table);
    /// returns it with its system fields. `item` must serialize to a JSON
    /// object ([`SdkError::InvalidArgument`] otherwise, before any request);
    /// an identity without the table's create permission gets 1011.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { item: String, qty: u32 }
    /// let saved = ctx.caller().table::<Order>("Order").create(&Order { item: "tea".into(), qty: 2 }).await?;
    /// println!("created {} owned by {:?}", saved.object_id, saved.owner_id);
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, item: &T) -> Result<Saved<T>, SdkError> {
        let body = self.with_class(to_json(item)?)?;
        self.client
            .send(self.call(Method::POST, [])?.body(body))
            .await
    }

    /// Updates the row `id` with `changes` (`PUT data/{table}/{id}`; a
    /// partial object is allowed); returns the whole row. An identity without
    /// the table's update permission gets 1012.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::json;
    /// let row = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .update("6F3C1A2B-0000-4000-8000-000000000001", &json!({"qty": 3}))
    ///     .await?;
    /// assert!(row.updated.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn update<C: Serialize + ?Sized>(
        &self,
        id: &str,
        changes: &C,
    ) -> Result<Saved<T>, SdkError> {
        check_id(id)?;
        let body = self.with_class(to_json(changes)?)?;
        self.client
            .send(self.call(Method::PUT, [id.to_owned()])?.body(body))
            .await
    }

    /// The row `id` (`GET data/{table}/{id}`), or `None` when the backend
    /// says it does not exist (1000). An identity without the table's find
    /// permission gets 1013 (an error, not `None`).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.caller();
    /// let orders = client.table::<serde_json::Value>("Order");
    /// match orders.find_by_id("6F3C1A2B-0000-4000-8000-000000000001").await? {
    ///     Some(row) => println!("qty {}", row.data["qty"]),
    ///     None => println!("no such order"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn find_by_id(&self, id: &str) -> Result<Option<Saved<T>>, SdkError> {
        check_id(id)?;
        match self
            .client
            .send(self.call(Method::GET, [id.to_owned()])?)
            .await
        {
            Ok(row) => Ok(Some(row)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The row `id` with the relations `query` asks for
    /// ([`Query::load_relations`], [`Query::relations_depth`],
    /// [`Query::relations_page_size`]; its other parts are not used), or
    /// `None` when it does not exist
    /// (`GET data/{table}/{id}?loadRelations=&relationsDepth=&relationsPageSize=`).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// let order = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .find_by_id_with("6F3C1A2B-0000-4000-8000-000000000001", &Query::new().load_relations(["items"]))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn find_by_id_with(
        &self,
        id: &str,
        query: &Query,
    ) -> Result<Option<Saved<T>>, SdkError> {
        check_id(id)?;
        query.check()?;
        let call = query.apply_relations(self.call(Method::GET, [id.to_owned()])?);
        match self.client.send(call).await {
            Ok(row) => Ok(Some(row)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of rows matching `query` (`GET data/{table}?where=&pageSize=&...`,
    /// see [`Query`]). A page size out of 1..=100 is
    /// [`SdkError::InvalidArgument`] before any request; a row that does not
    /// decode as `T` is [`SdkError::Decode`].
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { item: String, qty: u32 }
    /// let big = ctx
    ///     .caller()
    ///     .table::<Order>("Order")
    ///     .find(&Query::new().where_clause("qty > 10").sort_by("created desc").page_size(20))
    ///     .await?;
    /// for row in &big {
    ///     println!("{} x{}", row.data.item, row.data.qty);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn find(&self, query: &Query) -> Result<Vec<Saved<T>>, SdkError> {
        let call = query.apply(self.call(Method::GET, [])?)?;
        self.client.send(call).await
    }

    /// Creates several rows in one request (`POST data/bulk/{table}`, an
    /// array); returns their ids in order. Each item must serialize to a JSON
    /// object ([`SdkError::InvalidArgument`] otherwise, before any request).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::json;
    /// let ids = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .bulk_create(&[json!({"item": "tea"}), json!({"item": "cake"})])
    ///     .await?;
    /// assert_eq!(ids.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn bulk_create(&self, items: &[T]) -> Result<Vec<String>, SdkError> {
        let rows = items
            .iter()
            .map(|item| to_json(item).and_then(|v| self.with_class(v)))
            .collect::<Result<Vec<_>, _>>()?;
        let call = self.bulk_call(Method::POST)?.body(Value::Array(rows));
        self.client.send(call).await
    }

    fn with_class(&self, mut value: Value) -> Result<Value, SdkError> {
        match &mut value {
            Value::Object(map) => {
                map.insert("___class".to_owned(), Value::String(self.name.clone()));
                Ok(value)
            }
            _ => Err(SdkError::invalid(
                "item",
                "a row must serialize to a JSON object",
            )),
        }
    }
}

pub(super) fn check_id(id: &str) -> Result<(), SdkError> {
    if id.is_empty() {
        return Err(SdkError::invalid("id", "the object id is empty"));
    }
    Ok(())
}

pub(super) fn to_json<V: Serialize + ?Sized>(value: &V) -> Result<Value, SdkError> {
    serde_json::to_value(value)
        .map_err(|e| SdkError::invalid("item", format!("cannot be serialized: {e}")))
}
