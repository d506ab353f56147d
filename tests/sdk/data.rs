//! Relations, transactions, aggregate queries and dates through the SDK,
//! against the project's emulator on 127.0.0.1:0, under each identity:
//! the caller (a real user token), the superuser (the admin, custom role
//! `Admin`) and the server key alone (`ServerCodeUser`).
//!
//! Tables added to the dev app here (all `default = DENY`):
//!
//! | table | AuthenticatedUser | ServerCodeUser | Admin |
//! |---|---|---|---|
//! | `Order` | create, find (update: owners only) | find | update, find |
//! | `Item` | create, find, update | create, find, remove | — |
//! | `Secret_item` | — | — | create, find |
//!
//! Relations: `Order.items` -> `Item` (1:N), `Order.best` -> `Item` (1:1),
//! `Order.secret` -> `Secret_item` (1:N).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coderunner::emulator::{
    Access, Cardinality, Emulator, EmulatorConfig, Operation, RelationConfig, RolePermissions,
    TableConfig,
};
use coderunner::event::UserToken;
use coderunner::sdk::{
    Backendless, Children, Client, Query, Saved, SdkConfig, SdkError, SuperuserCredentials,
    UnitOfWork,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::{ADMIN, ADMIN_PASS, APP, CLOUD, login_metric_lock};

/// The emulator's code for a relation it cannot make (a guess, documented).
const RELATION_ERROR: i64 = 1018;

fn grant(role: &str, ops: &[Operation]) -> RolePermissions {
    RolePermissions {
        role: role.to_owned(),
        grant: ops.to_vec(),
        deny: Vec::new(),
    }
}

fn table(name: &str, permissions: Vec<RolePermissions>) -> TableConfig {
    TableConfig {
        name: name.to_owned(),
        default: Access::Deny,
        permissions,
    }
}

fn relation(table: &str, column: &str, child: &str, cardinality: Cardinality) -> RelationConfig {
    RelationConfig {
        table: table.to_owned(),
        column: column.to_owned(),
        child: child.to_owned(),
        cardinality,
    }
}

fn config() -> EmulatorConfig {
    use Operation::{Create, Find, Remove, Update};
    let mut config = EmulatorConfig::dev();
    config.tables.extend([
        table(
            "Order",
            vec![
                grant("AuthenticatedUser", &[Create, Find]),
                grant("ServerCodeUser", &[Find]),
                grant("Admin", &[Update, Find]),
            ],
        ),
        table(
            "Item",
            vec![
                grant("AuthenticatedUser", &[Create, Find, Update]),
                grant("ServerCodeUser", &[Create, Find, Remove]),
            ],
        ),
        table("Secret_item", vec![grant("Admin", &[Create, Find])]),
    ]);
    config.relations.extend([
        relation("Order", "items", "Item", Cardinality::Many),
        relation("Order", "best", "Item", Cardinality::One),
        relation("Order", "secret", "Secret_item", Cardinality::Many),
    ]);
    config
}

/// The emulator and an SDK handle on it (CloudCode key, the admin as superuser).
struct Backend {
    url: String,
    sdk: Backendless,
    emulator: Emulator,
    stop: CancellationToken,
    /// Superuser logins here count in the process-wide login metric that
    /// other tests of this binary measure.
    _metric: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Backend {
    async fn start() -> Backend {
        let metric = login_metric_lock().await;
        let emulator = Emulator::new(config()).expect("emulator starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(
            emulator
                .clone()
                .serve(listener, async move { s.cancelled().await }),
        );
        let mut sdk_config = SdkConfig::new(url.clone(), APP, CLOUD.to_owned().into());
        sdk_config.superuser = Some(SuperuserCredentials {
            login: ADMIN.to_owned(),
            password: ADMIN_PASS.to_owned().into(),
        });
        let sdk = Backendless::new(sdk_config).unwrap();
        Backend {
            url,
            sdk,
            emulator,
            stop,
            _metric: metric,
        }
    }

    /// A caller client for `email`, logged in through REST.
    async fn caller(&self, email: &str, password: &str) -> (Client, String) {
        let user: Value = reqwest::Client::new()
            .post(format!("{}/{APP}/dev-rest-key/users/login", self.url))
            .json(&json!({"login": email, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = user["user-token"].as_str().expect("logged in").to_owned();
        let id = user["objectId"].as_str().unwrap().to_owned();
        (self.sdk.caller(Some(UserToken::new(token))), id)
    }

    fn rows(&self, table: &str) -> Vec<Value> {
        self.emulator.inspect().rows(table)
    }
}

fn ids(rows: &[Saved<Value>]) -> Vec<String> {
    rows.iter().map(|r| r.object_id.clone()).collect()
}

fn code(e: SdkError) -> Option<i64> {
    e.code()
}

/// Creates `n` items named `{prefix}{i}` as `client`; their ids.
async fn items(client: &Client, prefix: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        let row = client
            .table::<Value>("Item")
            .create(&json!({"name": format!("{prefix}{i}"), "qty": i + 1}))
            .await
            .unwrap();
        out.push(row.object_id);
    }
    out
}

#[tokio::test]
async fn the_caller_sets_adds_deletes_and_pages_through_relations() {
    let backend = Backend::start().await;
    let (alice, _) = backend.caller("alice@example.com", "alice-pass").await;
    let orders = alice.table::<Value>("Order");
    let order = orders.create(&json!({"ref": "o-1"})).await.unwrap();
    let item = items(&alice, "rel", 4).await;

    let set = Children::ids([&item[0], &item[1]]);
    assert_eq!(
        orders
            .set_relation(&order.object_id, "items", &set)
            .await
            .unwrap(),
        2
    );
    // Adding one already there and one new counts the new one only.
    let add = Children::ids([&item[1], &item[2]]);
    assert_eq!(
        orders
            .add_relation(&order.object_id, "items", &add)
            .await
            .unwrap(),
        1
    );
    // A missing child is ignored.
    let ghost = Children::ids(["NO-SUCH-ID"]);
    assert_eq!(
        orders
            .add_relation(&order.object_id, "items", &ghost)
            .await
            .unwrap(),
        0
    );
    // By where clause.
    let by_name = Children::where_clause("name = 'rel3'");
    assert_eq!(
        orders
            .add_relation(&order.object_id, "items", &by_name)
            .await
            .unwrap(),
        1
    );

    let page = |offset| Query::new().page_size(3).offset(offset);
    let first: Vec<Saved<Value>> = orders
        .load_relations(&order.object_id, "items", &page(0))
        .await
        .unwrap();
    let rest: Vec<Saved<Value>> = orders
        .load_relations(&order.object_id, "items", &page(3))
        .await
        .unwrap();
    assert_eq!(ids(&first), item[..3].to_vec());
    assert_eq!(ids(&rest), item[3..].to_vec());

    assert_eq!(
        orders
            .delete_relation(&order.object_id, "items", &Children::ids([&item[0]]))
            .await
            .unwrap(),
        1
    );
    // Set replaces.
    assert_eq!(
        orders
            .set_relation(&order.object_id, "best", &Children::ids([&item[3]]))
            .await
            .unwrap(),
        1
    );

    // Relations loaded with finds: by name, with a page size, and by depth.
    let found = orders
        .find(
            &Query::new()
                .where_clause("ref = 'o-1'")
                .load_relations(["items"])
                .relations_page_size(2),
        )
        .await
        .unwrap();
    let loaded = found[0].data["items"].as_array().unwrap();
    assert_eq!(loaded.len(), 2, "{loaded:?}");
    assert_eq!(loaded[0]["objectId"], json!(item[1]));
    assert!(
        found[0].data.get("best").is_none(),
        "only `items` was asked for"
    );
    let deep = orders
        .find_by_id_with(&order.object_id, &Query::new().relations_depth(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deep.data["items"].as_array().unwrap().len(), 3);
    assert_eq!(deep.data["best"]["objectId"], json!(item[3]));
    assert_eq!(deep.data["best"]["name"], json!("rel3"));
    let plain = orders.find_by_id(&order.object_id).await.unwrap().unwrap();
    assert!(plain.data.get("items").is_none());

    // A 1:1 relation holds one child.
    let two = Children::ids([&item[0], &item[1]]);
    let err = orders
        .set_relation(&order.object_id, "best", &two)
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(RELATION_ERROR));
    let err = orders
        .add_relation(&order.object_id, "best", &Children::ids([&item[0]]))
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(RELATION_ERROR));
    // An undeclared column is refused; the REST form declares one on first use.
    let err = orders
        .add_relation(&order.object_id, "extras", &Children::ids([&item[0]]))
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(RELATION_ERROR));
    assert_eq!(
        orders
            .add_relation(
                &order.object_id,
                "extras:Item:n",
                &Children::ids([&item[0]])
            )
            .await
            .unwrap(),
        1
    );
    let extras: Vec<Saved<Value>> = orders
        .load_relations(&order.object_id, "extras", &Query::new())
        .await
        .unwrap();
    assert_eq!(ids(&extras), vec![item[0].clone()]);

    // Deleting a child takes it out of every relation.
    alice.table::<Value>("Item").delete(&item[1]).await.unwrap();
    let left: Vec<Saved<Value>> = orders
        .load_relations(&order.object_id, "items", &Query::new())
        .await
        .unwrap();
    assert_eq!(ids(&left), vec![item[2].clone(), item[3].clone()]);
}

#[tokio::test]
async fn relation_permissions_give_the_documented_codes_for_each_identity() {
    let backend = Backend::start().await;
    let (alice, _) = backend.caller("alice@example.com", "alice-pass").await;
    let (bob, _) = backend.caller("bob@example.com", "bob-pass").await;
    let server_key = backend.sdk.server_key();
    let superuser = backend.sdk.superuser();
    let order = alice
        .table::<Value>("Order")
        .create(&json!({"ref": "perm"}))
        .await
        .unwrap();
    let item = items(&alice, "perm", 1).await;
    let children = Children::ids([&item[0]]);
    let set = |client: Client, column: &'static str| {
        let (id, children) = (order.object_id.clone(), children.clone());
        async move {
            client
                .table::<Value>("Order")
                .set_relation(&id, column, &children)
                .await
        }
    };

    // Update permission on the parent: the owner may, another user and the
    // server key alone may not (1012).
    assert_eq!(set(alice.clone(), "items").await.unwrap(), 1);
    assert_eq!(
        code(set(bob.clone(), "items").await.unwrap_err()),
        Some(1012)
    );
    assert_eq!(
        code(set(server_key.clone(), "items").await.unwrap_err()),
        Some(1012)
    );
    // The superuser's custom role Admin grants update on Order.
    assert_eq!(set(superuser.clone(), "items").await.unwrap(), 1);

    // Find permission on the child table: only Admin may find Secret_item (1013).
    let secret = superuser
        .table::<Value>("Secret_item")
        .create(&json!({"name": "s"}))
        .await
        .unwrap();
    let secret_children = Children::ids([&secret.object_id]);
    let err = alice
        .table::<Value>("Order")
        .set_relation(&order.object_id, "secret", &secret_children)
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(1013));
    assert_eq!(
        superuser
            .table::<Value>("Order")
            .set_relation(&order.object_id, "secret", &secret_children)
            .await
            .unwrap(),
        1
    );
    // Loading: the server key may find orders and items.
    let loaded: Vec<Saved<Value>> = server_key
        .table::<Value>("Order")
        .load_relations(&order.object_id, "items", &Query::new())
        .await
        .unwrap();
    assert_eq!(ids(&loaded), item);
    // Alice may not find Secret_item: loading it is 1013, and a find leaves it out.
    let err = alice
        .table::<Value>("Order")
        .load_relations::<Value>(&order.object_id, "secret", &Query::new())
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(1013));
    let all = alice
        .table::<Value>("Order")
        .find_by_id_with(&order.object_id, &Query::new().load_relations(["*"]))
        .await
        .unwrap()
        .unwrap();
    assert!(all.data["items"].is_array());
    assert!(all.data.get("secret").is_none(), "{:?}", all.data);
    // A missing parent is 1000.
    let err = alice
        .table::<Value>("Order")
        .set_relation("NO-SUCH-ORDER", "items", &children)
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(1000));
}

#[tokio::test]
async fn a_transaction_that_fails_in_its_third_operation_writes_nothing_and_names_it() {
    let backend = Backend::start().await;
    let (alice, _) = backend.caller("alice@example.com", "alice-pass").await;
    let mut uow = UnitOfWork::new();
    let order = uow.create("Order", &json!({"ref": "tx-fail"})).unwrap();
    let item = uow.create("Item", &json!({"name": "tx-fail"})).unwrap();
    // Alice may not create Secret_item: 1011.
    let secret = uow
        .create("Secret_item", &json!({"name": "tx-fail"}))
        .unwrap();
    uow.add_relation("Order", &order, "items", Children::ids([&item]));

    let err = alice.data().transaction(&uow).await.unwrap_err();
    let SdkError::Transaction(failed) = &err else {
        panic!("not a transaction error: {err}");
    };
    assert_eq!(failed.index, Some(2));
    assert_eq!(failed.op_result_id, secret.id());
    assert_eq!(failed.op_result_id, "createSecret_item1");
    assert_eq!(failed.operation_type, "CREATE");
    assert_eq!(failed.table, "Secret_item");
    assert_eq!(failed.code, Some(1011));
    assert_eq!(err.code(), Some(1011));
    let shown = err.to_string();
    assert!(
        shown.contains("operation 2") && shown.contains("createSecret_item1"),
        "{shown}"
    );
    for table in ["Order", "Item", "Secret_item"] {
        let written: Vec<Value> = backend
            .rows(table)
            .into_iter()
            .filter(|r| r["ref"] == json!("tx-fail") || r["name"] == json!("tx-fail"))
            .collect();
        assert!(written.is_empty(), "{table}: {written:?}");
    }

    // The same unit as the superuser, whose role Admin may create
    // Secret_item: it commits, every operation.
    let done = backend
        .sdk
        .superuser()
        .data()
        .transaction(&uow)
        .await
        .unwrap();
    let order: Saved<Value> = done.get(&order).unwrap();
    let related: Vec<Saved<Value>> = backend
        .sdk
        .superuser()
        .table::<Value>("Order")
        .load_relations(&order.object_id, "items", &Query::new())
        .await
        .unwrap();
    assert_eq!(
        ids(&related),
        vec![done.get::<Saved<Value>>(&item).unwrap().object_id]
    );
    assert_eq!(
        backend.rows("Secret_item").len(),
        1,
        "the superuser's unit wrote its Secret_item"
    );
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Item {
    name: String,
    qty: u32,
}

#[tokio::test]
async fn a_transaction_uses_earlier_results_and_commits_everything() {
    let backend = Backend::start().await;
    let (alice, alice_id) = backend.caller("alice@example.com", "alice-pass").await;
    let mut uow = UnitOfWork::new();
    let order = uow.create("Order", &json!({"ref": "tx-ok"})).unwrap();
    let batch = uow
        .bulk_create(
            "Item",
            &[
                Item {
                    name: "tx-a".into(),
                    qty: 1,
                },
                Item {
                    name: "tx-b".into(),
                    qty: 2,
                },
            ],
        )
        .unwrap();
    let single = uow
        .create(
            "Item",
            &json!({"name": "tx-c", "qty": 3, "orderRef": order.clone().field("ref")}),
        )
        .unwrap();
    let set = uow.set_relation("Order", &order, "items", Children::Results(batch.clone()));
    let best = uow.set_relation("Order", &order, "best", Children::ids([&single]));
    let renamed = uow
        .update("Order", &order, &json!({"ref": "tx-ok-2"}))
        .unwrap();
    let found = uow
        .find(
            "Item",
            &Query::new().where_clause("name LIKE 'tx-%'").sort_by("qty"),
        )
        .unwrap();
    let bumped = uow
        .bulk_update(
            "Item",
            Children::Results(found.clone()),
            &json!({"checked": true}),
        )
        .unwrap();

    let done = alice.data().transaction(&uow).await.unwrap();
    let saved: Saved<Value> = done.get(&order).unwrap();
    assert_eq!(saved.owner_id.as_deref(), Some(alice_id.as_str()));
    let batch_ids: Vec<String> = done.get(&batch).unwrap();
    assert_eq!(batch_ids.len(), 2);
    let single_row: Saved<Item> = done.get(&single).unwrap();
    assert_eq!(single_row.data.qty, 3);
    assert_eq!(done.get::<u64>(&set).unwrap(), 2);
    assert_eq!(done.get::<u64>(&best).unwrap(), 1);
    let renamed: Saved<Value> = done.get(&renamed).unwrap();
    assert_eq!(renamed.data["ref"], json!("tx-ok-2"));
    let found: Vec<Saved<Item>> = done.get(&found).unwrap();
    assert_eq!(
        found
            .iter()
            .map(|r| r.data.name.as_str())
            .collect::<Vec<_>>(),
        ["tx-a", "tx-b", "tx-c"]
    );
    assert_eq!(done.get::<u64>(&bumped).unwrap(), 3);

    // What the backend holds afterwards.
    let orders = alice.table::<Value>("Order");
    let items: Vec<Saved<Value>> = orders
        .load_relations(&saved.object_id, "items", &Query::new())
        .await
        .unwrap();
    assert_eq!(ids(&items), batch_ids);
    assert!(items.iter().all(|i| i.data["checked"] == json!(true)));
    let row = orders
        .find_by_id_with(&saved.object_id, &Query::new().load_relations(["best"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.data["ref"], json!("tx-ok-2"));
    assert_eq!(row.data["best"]["objectId"], json!(single_row.object_id));
    // The value reference resolved to the order's `ref` as created.
    assert_eq!(single_row.data.name, "tx-c");
    let c = backend
        .rows("Item")
        .into_iter()
        .find(|r| r["name"] == json!("tx-c"))
        .unwrap();
    assert_eq!(c["orderRef"], json!("tx-ok"));

    // A reference to an operation that does not come earlier refuses the
    // whole unit; an empty unit is refused before sending.
    let mut bad = UnitOfWork::new();
    bad.create("Item", &json!({"name": "tx-late"})).unwrap();
    let later = UnitOfWork::new().create("Order", &json!({})).unwrap();
    bad.delete("Order", &later);
    let err = alice.data().transaction(&bad).await.unwrap_err();
    let SdkError::Transaction(failed) = &err else {
        panic!("{err}");
    };
    assert_eq!(failed.index, Some(1));
    assert!(
        backend
            .rows("Item")
            .iter()
            .all(|r| r["name"] != json!("tx-late"))
    );
    assert!(matches!(
        alice.data().transaction(&UnitOfWork::new()).await,
        Err(SdkError::InvalidArgument { .. })
    ));
}

#[tokio::test]
async fn the_server_key_runs_a_transaction_with_its_own_permissions() {
    let backend = Backend::start().await;
    let server_key = backend.sdk.server_key();
    let mut uow = UnitOfWork::new();
    let item = uow
        .create("Item", &json!({"name": "sk-item", "qty": 9}))
        .unwrap();
    let removed = uow.delete("Item", &item);
    let done = server_key.data().transaction(&uow).await.unwrap();
    assert!(done.get::<i64>(&removed).unwrap() > 0);
    assert!(
        backend
            .rows("Item")
            .iter()
            .all(|r| r["name"] != json!("sk-item"))
    );

    let mut uow = UnitOfWork::new();
    uow.create("Order", &json!({"ref": "sk"})).unwrap();
    let err = server_key.data().transaction(&uow).await.unwrap_err();
    assert_eq!(err.code(), Some(1011));
}

#[tokio::test]
async fn aggregates_group_by_having_and_distinct() {
    let backend = Backend::start().await;
    let client = backend.sdk.server_key();
    let table = client.table::<Value>("Item");
    for (kind, qty) in [("a", 1), ("a", 2), ("a", 3), ("b", 10), ("c", 1)] {
        table
            .create(&json!({"name": format!("agg-{kind}"), "kind": kind, "qty": qty}))
            .await
            .unwrap();
    }
    #[derive(Debug, Deserialize, PartialEq)]
    struct Group {
        kind: String,
        total: i64,
        count: i64,
    }
    let groups: Vec<Group> = table
        .find_as(
            &Query::new()
                .where_clause("name LIKE 'agg-%'")
                .props(["kind", "Sum(qty) as total", "Count(objectId)"])
                .group_by(["kind"])
                .having("Sum(qty) > 1")
                .sort_by("total desc"),
        )
        .await
        .unwrap();
    assert_eq!(
        groups,
        vec![
            Group {
                kind: "b".into(),
                total: 10,
                count: 1
            },
            Group {
                kind: "a".into(),
                total: 6,
                count: 3
            },
        ]
    );
    let overall: Vec<Value> = table
        .find_as(&Query::new().where_clause("name LIKE 'agg-%'").props([
            "Avg(qty)",
            "Min(qty) as least",
            "Max(qty)",
        ]))
        .await
        .unwrap();
    assert_eq!(overall.len(), 1);
    assert_eq!(overall[0]["avg"], json!(3.4));
    assert_eq!(
        (overall[0]["least"].clone(), overall[0]["max"].clone()),
        (json!(1), json!(10))
    );
    let kinds: Vec<Value> = table
        .find_as(
            &Query::new()
                .where_clause("name LIKE 'agg-%'")
                .props(["kind"])
                .distinct(true)
                .sort_by("kind"),
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = kinds.iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["a", "b", "c"]);
    // The caller and the superuser get the same groups (both may find
    // items); the caller may not aggregate Secret_item (1013).
    let (alice, _) = backend.caller("alice@example.com", "alice-pass").await;
    let superuser = backend.sdk.superuser();
    let totals = Query::new()
        .where_clause("name LIKE 'agg-%'")
        .props(["kind", "Sum(qty) as total"])
        .group_by(["kind"])
        .sort_by("kind");
    for client in [&alice, &superuser] {
        let rows: Vec<Value> = client
            .table::<Value>("Item")
            .find_as(&totals)
            .await
            .unwrap();
        let totals: Vec<i64> = rows.iter().map(|r| r["total"].as_i64().unwrap()).collect();
        assert_eq!(totals, [6, 10, 1], "{:?}", client.identity());
    }
    let err = alice
        .table::<Value>("Secret_item")
        .find_as::<Value>(&Query::new().props(["Count(objectId)"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(1013));
    // A having on an aggregate that is not asked for is a where-clause error.
    let err = table
        .find_as::<Value>(
            &Query::new()
                .props(["kind"])
                .group_by(["kind"])
                .having("Sum(qty) > 1"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(1017));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Event {
    name: String,
    #[serde(with = "coderunner::sdk::epoch_ms")]
    starts: SystemTime,
    #[serde(with = "coderunner::sdk::epoch_ms::option", default)]
    ends: Option<chrono::DateTime<chrono::Utc>>,
}

#[tokio::test]
async fn dates_round_trip_as_epoch_milliseconds() {
    let backend = Backend::start().await;
    let client = backend.sdk.server_key();
    let starts = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
    let ends = chrono::DateTime::from_timestamp_millis(1_767_229_200_000);
    let event = Event {
        name: "launch".into(),
        starts,
        ends,
    };
    let saved = client
        .table::<Event>("Calendar")
        .create(&event)
        .await
        .unwrap();
    assert_eq!(saved.data, event);
    let stored = backend.rows("Calendar");
    assert_eq!(stored[0]["starts"], json!(1_767_225_600_123_i64));
    let created = saved.created_at().unwrap();
    assert!(created <= SystemTime::now() && created > starts - Duration::from_secs(86_400 * 3650));
    let found = client
        .table::<Event>("Calendar")
        .find(&Query::new().where_clause("starts > 1767225600000"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].data.starts, starts);
}
