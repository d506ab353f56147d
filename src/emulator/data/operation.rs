//! The skeleton every data route shares: the caller's permission, the
//! before-handler, the store, the after-handler ([`DataOp::run`]), and the
//! per-row permission rule of one row and of each row of a bulk operation.

use std::future::Future;

use rusqlite::Connection;
use serde_json::Value;

use crate::emulator::auth::Requester;
use crate::emulator::config::{KeyKind, Operation};
use crate::emulator::dispatch::RunnerBefore;
use crate::emulator::error::ApiError;
use crate::emulator::store::{self, Object, StorageError};
use crate::emulator::where_clause::SqlCondition;
use crate::emulator::{AppState, Shared};
use crate::event::EventId;

/// One data operation of one request: who asks, on which table, and which
/// before-event fires (its after-event is its pair in the catalog) for which
/// target.
#[derive(Clone, Copy)]
pub(super) struct DataOp<'a> {
    pub(super) st: &'a Shared,
    pub(super) caller: &'a Requester,
    pub(super) table: &'a str,
    before: EventId,
    /// The handlers' target: the table, or `*` for the user provider's
    /// events (which are not targeted).
    target: &'a str,
}

impl<'a> DataOp<'a> {
    /// An operation on `table` that fires the persistence event `before` (and
    /// its after-event) for the table's handlers.
    pub(super) fn new(
        st: &'a Shared,
        caller: &'a Requester,
        table: &'a str,
        before: EventId,
    ) -> Self {
        Self {
            st,
            caller,
            table,
            before,
            target: table,
        }
    }

    /// The same operation firing the user provider's event `before` (and its
    /// after-event, target `*`) instead when the table is `Users`.
    pub(super) fn users_fire(self, before: EventId) -> Self {
        if self.table == store::USERS {
            Self {
                before,
                target: "*",
                ..self
            }
        } else {
            self
        }
    }

    /// The table permission for `op`, before any row is read.
    pub(super) fn check(&self, op: Operation) -> Result<(), ApiError> {
        self.st.permissions.check(
            self.table,
            op,
            &self.caller.roles,
            self.caller.user_id(),
            None,
        )
    }

    /// Loads the row `id` and checks `op` on it (see [`check_row`]); 1000 if
    /// it is missing.
    pub(super) async fn load_checked(&self, id: &str, op: Operation) -> Result<Object, ApiError> {
        let id = id.to_owned();
        let row = self
            .store(move |c, table| store::get(c, table, &id))
            .await?
            .ok_or_else(ApiError::not_found)?;
        check_row(self.st, self.caller, self.table, op, &row)?;
        Ok(row)
    }

    /// Whether the row `id` exists.
    pub(super) async fn exists(&self, id: &str) -> Result<bool, ApiError> {
        let id = id.to_owned();
        Ok(self
            .store(move |c, table| store::get(c, table, &id))
            .await?
            .is_some())
    }

    /// Runs `f` with the connection and the table's name on the store's
    /// blocking thread.
    pub(super) async fn store<R, E>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> Result<R, E> + Send + 'static,
    ) -> Result<R, ApiError>
    where
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
        ApiError: From<E>,
    {
        let table = self.table.to_owned();
        Ok(self.st.store.call(move |c| f(c, &table)).await?)
    }

    /// The before-handler with `args`, then `work` with the arguments as the
    /// handler left them, then the after-handler with those arguments and
    /// `work`'s result; the reply is what the after-handler leaves. A
    /// before-handler's premature result is the reply at once. Permissions
    /// are the caller's to check first.
    pub(super) async fn run<F, Fut>(&self, args: Vec<Value>, work: F) -> Result<Value, ApiError>
    where
        F: FnOnce(Vec<Value>) -> Fut,
        Fut: Future<Output = Result<Value, ApiError>>,
    {
        let after = self.before.def().and_then(|e| e.pair).ok_or_else(|| {
            ApiError::internal(format!("event {} has no after-event", self.before))
        })?;
        let dispatcher = &self.st.dispatcher;
        let args = match dispatcher
            .before(self.caller, self.before, self.target, args)
            .await?
        {
            RunnerBefore::Continue(args) => args,
            RunnerBefore::Premature(reply) => return Ok(reply),
        };
        let result = work(args.clone()).await?;
        dispatcher
            .after(self.caller, after, self.target, args, result)
            .await
    }

    /// Saves `items` with `save` (insert or upsert) in one transaction; their
    /// objectIds, in order.
    pub(super) async fn save_all(
        &self,
        items: Vec<Object>,
        save: fn(&Connection, &str, Object, Option<&str>) -> Result<Object, StorageError>,
    ) -> Result<Value, ApiError> {
        let owner = self.caller.user_id().map(str::to_owned);
        self.store(move |c, table| {
            store::transaction(c, |tx| {
                let mut ids = Vec::with_capacity(items.len());
                for item in items {
                    ids.push(save(tx, table, item, owner.as_deref())?["objectId"].take());
                }
                Ok::<_, StorageError>(Value::Array(ids))
            })
        })
        .await
    }

    /// Applies `apply` to every row matching `condition` in one transaction,
    /// checking `op` on each: one refused row refuses the whole operation
    /// (nothing is written). The ids of the matching rows.
    pub(super) async fn for_each_matching(
        &self,
        condition: Option<SqlCondition>,
        op: Operation,
        mut apply: impl FnMut(&Connection, &str, &str, Object) -> Result<(), StorageError>
        + Send
        + 'static,
    ) -> Result<Vec<String>, ApiError> {
        let (st, caller) = (self.st.clone(), self.caller.clone());
        self.store(move |c, table| {
            store::transaction(c, |tx| {
                let ids = store::matching_ids(tx, table, condition.as_ref())?;
                for id in &ids {
                    if let Some(row) = store::get(tx, table, id)? {
                        check_row(&st, &caller, table, op, &row)?;
                        apply(tx, table, id, row)?;
                    }
                }
                Ok::<_, ApiError>(ids)
            })
        })
        .await
    }
}

/// The per-row rule, the same for one row and for each row of a bulk
/// operation: the table permissions with the owner policy, and a user may be
/// changed or removed only by that user or by business logic.
pub(super) fn check_row(
    st: &AppState,
    caller: &Requester,
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
