//! Relations of a table's rows: set, add and delete the children of a
//! parent row's relation column (by id or by where clause), and load them a
//! page at a time. Each call acts as the identity of the client of its
//! [`Table`]; the backend needs update permission on the parent and find
//! permission on the child table.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::data::{Query, Saved, Table, check_id};
use super::error::SdkError;
use super::transaction::{ObjectRef, OpRef};

/// The children of a relation change: given by id, chosen by a where
/// clause on the child table, or (in a [`super::UnitOfWork`] only) the rows
/// an earlier operation returned.
///
/// # Example
/// ```
/// use coderunner::sdk::Children;
/// let two = Children::ids(["A1", "B2"]);
/// let open = Children::where_clause("status = 'open'");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Children {
    /// These rows (ids, or in a transaction references to rows).
    Ids(Vec<ObjectRef>),
    /// Every row of the child table matching this where clause.
    Where(String),
    /// Every row an earlier operation of the same transaction returned (a
    /// find or a bulk create).
    Results(OpRef),
}

impl Children {
    /// The rows with these ids (or, in a transaction, references: an
    /// [`OpRef`] or anything else that is `Into<ObjectRef>`). Outside a
    /// [`super::UnitOfWork`] a reference, or an empty id, is
    /// [`SdkError::InvalidArgument`] before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Children;
    /// let ids = vec!["ITEM-1".to_owned(), "ITEM-2".to_owned()];
    /// ctx.caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .add_relation("ORDER-ID", "items", &Children::ids(&ids))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ids<I, R>(ids: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<ObjectRef>,
    {
        Children::Ids(ids.into_iter().map(Into::into).collect())
    }

    /// The rows of the child table matching `clause`, sent as
    /// `?whereClause=` (no body) by [`Table::set_relation`] and its siblings.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Children;
    /// let set = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .set_relation("ORDER-ID", "items", &Children::where_clause("sku in ('X', 'Y')"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn where_clause(clause: impl Into<String>) -> Self {
        Children::Where(clause.into())
    }

    /// The ids for a REST call; references only work in a transaction.
    fn plain_ids(&self) -> Result<Vec<String>, SdkError> {
        let Children::Ids(ids) = self else {
            return Err(SdkError::invalid(
                "children",
                "the results of another operation can be children only inside a UnitOfWork",
            ));
        };
        ids.iter()
            .map(|r| match r.as_value() {
                Value::String(id) if !id.is_empty() => Ok(id.clone()),
                Value::String(_) => Err(SdkError::invalid("children", "a child id is empty")),
                _ => Err(SdkError::invalid(
                    "children",
                    "a reference to an operation's result can be a child only inside a UnitOfWork",
                )),
            })
            .collect()
    }
}

impl<T> Table<'_, T> {
    async fn change_relation(
        &self,
        method: Method,
        parent_id: &str,
        column: &str,
        children: &Children,
    ) -> Result<u64, SdkError> {
        check_id(parent_id)?;
        if column.is_empty() {
            return Err(SdkError::invalid("column", "the relation column is empty"));
        }
        let mut call = self.call(method, [parent_id.to_owned(), column.to_owned()])?;
        call = match children {
            Children::Where(clause) => call.query("whereClause", clause),
            other => {
                let ids = other.plain_ids()?;
                call.body(Value::Array(ids.into_iter().map(Value::String).collect()))
            }
        };
        self.client().send(call).await
    }

    /// Makes `children` the only children of `parent_id` in `column`
    /// (`POST data/{table}/{id}/{column}`); returns how many are set.
    /// `column` may be `name:ChildTable:1` (or `:n`) to declare the relation
    /// on first use, as the REST API allows.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(client: coderunner::sdk::Client) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Children;
    /// let orders = client.table::<serde_json::Value>("Order");
    /// orders.set_relation("ORDER-ID", "items", &Children::ids(["ITEM-1", "ITEM-2"])).await?;
    /// orders.add_relation("ORDER-ID", "items", &Children::where_clause("sku = 'X'")).await?;
    /// let items: Vec<coderunner::sdk::Saved<serde_json::Value>> = orders
    ///     .load_relations("ORDER-ID", "items", &coderunner::sdk::Query::new().page_size(50))
    ///     .await?;
    /// orders.delete_relation("ORDER-ID", "items", &Children::ids(["ITEM-1"])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_relation(
        &self,
        parent_id: &str,
        column: &str,
        children: &Children,
    ) -> Result<u64, SdkError> {
        self.change_relation(Method::POST, parent_id, column, children)
            .await
    }

    /// Adds `children` to `parent_id`'s `column`
    /// (`PUT data/{table}/{id}/{column}`, the ids as the body or
    /// `?whereClause=`); returns how many were added (children already there,
    /// or missing, do not count). Needs update permission on the parent and
    /// find permission on the child table; an empty id or column is
    /// [`SdkError::InvalidArgument`] before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Children;
    /// let added = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .add_relation("ORDER-ID", "items", &Children::ids(["ITEM-3"]))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_relation(
        &self,
        parent_id: &str,
        column: &str,
        children: &Children,
    ) -> Result<u64, SdkError> {
        self.change_relation(Method::PUT, parent_id, column, children)
            .await
    }

    /// Removes `children` from `parent_id`'s `column`
    /// (`DELETE data/{table}/{id}/{column}`, the ids as the body or
    /// `?whereClause=`); the child rows stay. Returns how many were removed.
    /// Needs update permission on the parent row.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Children;
    /// let removed = ctx
    ///     .caller()
    ///     .table::<serde_json::Value>("Order")
    ///     .delete_relation("ORDER-ID", "items", &Children::where_clause("discontinued = true"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_relation(
        &self,
        parent_id: &str,
        column: &str,
        children: &Children,
    ) -> Result<u64, SdkError> {
        self.change_relation(Method::DELETE, parent_id, column, children)
            .await
    }

    /// One page of the children of `parent_id` in `column`, as rows of `C`
    /// (`GET data/{table}/{id}/{column}?pageSize=&offset=&where=&sortBy=&props=`):
    /// `query` gives the page (`page_size`, `offset`), a where clause on the
    /// children, sorting and properties. Needs find permission on the child
    /// table.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::{Query, Saved};
    /// #[derive(serde::Deserialize)]
    /// struct Item { sku: String }
    /// let client = ctx.caller();
    /// let orders = client.table::<serde_json::Value>("Order");
    /// let mut offset = 0;
    /// loop {
    ///     let page: Vec<Saved<Item>> = orders
    ///         .load_relations("ORDER-ID", "items", &Query::new().page_size(100).offset(offset))
    ///         .await?;
    ///     if page.is_empty() {
    ///         break;
    ///     }
    ///     offset += page.len() as u32;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn load_relations<C: DeserializeOwned>(
        &self,
        parent_id: &str,
        column: &str,
        query: &Query,
    ) -> Result<Vec<Saved<C>>, SdkError> {
        check_id(parent_id)?;
        if column.is_empty() {
            return Err(SdkError::invalid("column", "the relation column is empty"));
        }
        let call =
            query.apply(self.call(Method::GET, [parent_id.to_owned(), column.to_owned()])?)?;
        self.client().send(call).await
    }
}
