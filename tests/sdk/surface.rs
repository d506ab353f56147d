//! Every SDK call against the emulator, as each identity where it matters:
//! the SDK and the emulator must agree on paths, bodies and replies.

use std::time::{Duration, SystemTime};

use coderunner::emulator::{Emulator, EmulatorConfig, Inspector};
use coderunner::event::UserToken;
use coderunner::sdk::{Backendless, Query, SdkConfig, SdkError, SuperuserCredentials};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, ADMIN_PASS, APP, CLOUD, api_path};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    title: String,
    rank: i64,
}

async fn emulator() -> (Backendless, Inspector) {
    emulator_with(|_| {}).await
}

/// The emulator and an SDK on it, its config changed by `edit` first.
pub(crate) async fn emulator_with(edit: impl FnOnce(&mut SdkConfig)) -> (Backendless, Inspector) {
    let emulator = Emulator::new(EmulatorConfig::dev()).unwrap();
    let inspect = emulator.inspect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.serve(listener, std::future::pending()));
    let mut sdk = SdkConfig::new(url, APP, CLOUD.into());
    sdk.superuser = Some(SuperuserCredentials {
        login: ADMIN.into(),
        password: ADMIN_PASS.into(),
    });
    edit(&mut sdk);
    (Backendless::new(sdk).unwrap(), inspect)
}

#[tokio::test]
async fn users_calls_agree_with_the_emulator() {
    let _lock = crate::helpers::login_metric_lock().await;
    let (sdk, inspect) = emulator().await;
    let key = sdk.server_key();
    let password = "carol-pass".into();
    let carol = key
        .users()
        .register(
            &json!({"email": "carol@example.com", "name": "Carol"}),
            &password,
        )
        .await
        .unwrap();
    assert_eq!(carol.data["name"], "Carol");
    assert!(carol.data.get("password").is_none(), "{:?}", carol.data);

    let logged = key
        .users()
        .login("carol@example.com", &password)
        .await
        .unwrap();
    assert!(
        logged.user.data.get("user-token").is_none(),
        "the token is kept apart from the user: {:?}",
        logged.user.data
    );
    let token: UserToken = logged.token.clone();
    let caller = sdk.caller(Some(token.clone()));
    let roles = caller.users().roles().await.unwrap();
    assert!(
        roles.contains(&"AuthenticatedUser".to_owned())
            && roles.contains(&"ServerCodeUser".to_owned()),
        "{roles:?}"
    );
    let su_roles = sdk.superuser().users().roles().await.unwrap();
    assert!(su_roles.contains(&"Admin".to_owned()), "{su_roles:?}");
    let key_roles = key.users().roles().await.unwrap();
    assert!(
        !key_roles.contains(&"AuthenticatedUser".to_owned()),
        "{key_roles:?}"
    );

    assert!(key.users().is_valid_token(&token).await.unwrap());
    let found = key
        .users()
        .find_by_id::<Value>(&carol.object_id)
        .await
        .unwrap()
        .expect("carol exists");
    assert_eq!(found.data["email"], "carol@example.com");
    assert!(
        key.users()
            .find_by_id::<Value>("NO-SUCH-USER")
            .await
            .unwrap()
            .is_none()
    );

    caller.users().logout().await.unwrap();
    assert!(!key.users().is_valid_token(&token).await.unwrap());
    caller.users().logout().await.unwrap(); // already logged out: Ok
    let err = caller.users().roles().await.unwrap_err();
    assert!(err.is_invalid_session(), "{err:?}");

    // The shared session cannot be ended from a handler, and nothing is sent.
    let before = inspect.requests().len();
    for client in [sdk.superuser(), sdk.server_key(), sdk.caller(None)] {
        let err = client.users().logout().await.unwrap_err();
        assert!(matches!(err, SdkError::InvalidArgument { .. }), "{err:?}");
    }
    assert_eq!(inspect.requests().len(), before);

    let wrong = key
        .users()
        .login("carol@example.com", &"nope".into())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(3003), "{wrong:?}");
    assert!(!format!("{wrong:?}").contains("nope"));
}

#[tokio::test]
async fn data_calls_agree_with_the_emulator() {
    let _lock = crate::helpers::login_metric_lock().await;
    let (sdk, inspect) = emulator().await;
    let key = sdk.server_key();
    let notes = key.table::<Note>("Note");
    let a = notes
        .create(&Note {
            title: "a".into(),
            rank: 1,
        })
        .await
        .unwrap();
    assert_eq!(a.class.as_deref(), Some("Note"));
    assert_eq!(a.owner_id, None, "created with the key alone");
    assert!(a.created.is_some());
    let ids = notes
        .bulk_create(&[
            Note {
                title: "b".into(),
                rank: 2,
            },
            Note {
                title: "c".into(),
                rank: 3,
            },
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(notes.count(None).await.unwrap(), 3);
    assert_eq!(notes.count(Some("rank >= 2")).await.unwrap(), 2);

    let found = notes
        .find(
            &Query::new()
                .where_clause("rank > 1")
                .sort_by("rank DESC")
                .page_size(1)
                .offset(1),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].data.title, "b");
    let props = key
        .table::<Value>("Note")
        .find(&Query::new().props(["title"]).sort_by("title"))
        .await
        .unwrap();
    assert_eq!(props.len(), 3);
    assert_eq!(props[0].data.get("rank"), None, "{:?}", props[0].data);

    let updated = notes
        .update(&a.object_id, &json!({"rank": 10}))
        .await
        .unwrap();
    assert_eq!(updated.data.rank, 10);
    assert_eq!(updated.data.title, "a");
    assert!(updated.updated.is_some());
    let again = notes.find_by_id(&a.object_id).await.unwrap().unwrap();
    assert_eq!(again.data.rank, 10);

    assert_eq!(
        notes
            .bulk_update("rank < 10", &json!({"title": "low"}))
            .await
            .unwrap(),
        2
    );
    assert_eq!(notes.count(Some("title = 'low'")).await.unwrap(), 2);
    assert!(notes.delete(&a.object_id).await.unwrap() > 0);
    assert!(notes.find_by_id(&a.object_id).await.unwrap().is_none());
    assert_eq!(notes.bulk_delete("rank > 0").await.unwrap(), 2);
    assert_eq!(notes.count(None).await.unwrap(), 0);

    // Characters that need escaping in a query string, and non-ASCII text.
    let odd = "a+b&c%d=e #ü'";
    notes
        .create(&Note {
            title: odd.into(),
            rank: 50,
        })
        .await
        .unwrap();
    let clause = format!("title = '{}'", odd.replace('\'', "''"));
    assert_eq!(notes.count(Some(&clause)).await.unwrap(), 1, "{clause}");
    let found = notes
        .find(&Query::new().where_clause(&clause))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].data.title, odd);
    assert_eq!(notes.count(Some("title LIKE 'a+b&c%'")).await.unwrap(), 1);
    assert_eq!(notes.bulk_delete(&clause).await.unwrap(), 1);

    // Permissions: the key alone may not read Audit_log (1013); a query
    // error is a typed backend error.
    let err = key
        .table::<Value>("Audit_log")
        .find(&Query::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(1013), "{err:?}");
    let err = notes
        .find(&Query::new().where_clause("rank >>> 1"))
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::Backend { .. }), "{err:?}");
    let err = notes.find(&Query::new().page_size(101)).await.unwrap_err();
    assert!(matches!(err, SdkError::InvalidArgument { .. }), "{err:?}");

    // Owner: rows created as the superuser belong to the admin.
    let owned = sdk
        .superuser()
        .table::<Note>("Note")
        .create(&Note {
            title: "mine".into(),
            rank: 0,
        })
        .await
        .unwrap();
    let admin_id = inspect
        .requests()
        .into_iter()
        .rev()
        .find(|r| api_path(&r.path) == "data/Note")
        .and_then(|r| r.user_id)
        .unwrap();
    assert_eq!(owned.owner_id, Some(admin_id));
}

#[tokio::test]
async fn counter_and_cache_calls_agree_with_the_emulator() {
    let (sdk, _) = emulator().await;
    let c = sdk.server_key();
    let c = c.counters();
    assert_eq!(c.get("n").await.unwrap(), 0);
    assert_eq!(c.increment_and_get("n").await.unwrap(), 1);
    assert_eq!(c.get_and_increment("n").await.unwrap(), 1);
    assert_eq!(c.decrement_and_get("n").await.unwrap(), 1);
    assert_eq!(c.get_and_decrement("n").await.unwrap(), 1);
    assert_eq!(c.add_and_get("n", 5).await.unwrap(), 5);
    assert_eq!(c.get_and_add("n", -2).await.unwrap(), 5);
    assert_eq!(c.get("n").await.unwrap(), 3);
    assert!(!c.compare_and_set("n", 4, 9).await.unwrap());
    assert!(c.compare_and_set("n", 3, 9).await.unwrap());
    assert_eq!(c.get("n").await.unwrap(), 9);
    c.reset("n").await.unwrap();
    assert_eq!(c.get("n").await.unwrap(), 0);

    let k = sdk.server_key();
    let cache = k.cache();
    assert_eq!(cache.get::<Value>("nothing").await.unwrap(), None);
    assert!(!cache.contains("nothing").await.unwrap());
    let value = json!({"a": [1, 2], "b": "x"});
    cache
        .put("obj", &value, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(cache.get::<Value>("obj").await.unwrap(), Some(value));
    cache.put("s", "plain text", None).await.unwrap();
    assert_eq!(
        cache.get::<String>("s").await.unwrap().as_deref(),
        Some("plain text")
    );
    cache
        .expire_at("obj", SystemTime::now() + Duration::from_secs(120))
        .await
        .unwrap();
    cache
        .expire_in("obj", Duration::from_millis(7_200_000))
        .await
        .unwrap();
    assert!(cache.contains("obj").await.unwrap());
    cache.delete("obj").await.unwrap();
    assert!(!cache.contains("obj").await.unwrap());
    let err = cache
        .expire_at("s", SystemTime::now() + Duration::from_secs(3 * 3600))
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::InvalidArgument { .. }), "{err:?}");
    // A key with characters that need escaping in a path.
    cache.put("a b/c?d", &1, None).await.unwrap();
    assert_eq!(cache.get::<i64>("a b/c?d").await.unwrap(), Some(1));
}

#[tokio::test]
async fn empty_names_are_refused_before_any_request() {
    let (sdk, inspect) = emulator().await;
    let key = sdk.server_key();
    let before = inspect.requests().len();
    let errors = [
        (
            key.cache().get::<Value>("").await.unwrap_err(),
            "key",
            "the cache key is empty",
        ),
        (
            key.counters().increment_and_get("").await.unwrap_err(),
            "counter",
            "the counter name is empty",
        ),
        (
            key.table::<Value>("").find_by_id("x").await.unwrap_err(),
            "table",
            "the table name is empty",
        ),
    ];
    for (err, named, message) in errors {
        assert!(
            matches!(err, SdkError::InvalidArgument { argument, .. } if argument == named),
            "{err:?}"
        );
        assert!(err.to_string().ends_with(message), "{err}");
    }
    assert_eq!(inspect.requests().len(), before, "nothing was sent");
}

#[tokio::test]
async fn ids_stay_inside_their_path_segment() {
    let (sdk, inspect) = emulator().await;
    let key = sdk.server_key();
    let table = key.table::<Value>("Note");
    for bad in [".", ".."] {
        let before = inspect.requests().len();
        let errors = [
            table.find_by_id(bad).await.unwrap_err(),
            table.delete(bad).await.unwrap_err(),
            table.update(bad, &json!({"x": 1})).await.unwrap_err(),
            key.users().find_by_id::<Value>(bad).await.unwrap_err(),
            key.cache().get::<Value>(bad).await.unwrap_err(),
            key.counters().get(bad).await.unwrap_err(),
        ];
        for err in errors {
            assert!(
                matches!(
                    err,
                    SdkError::InvalidArgument {
                        argument: "path",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("change the route"), "{err}");
        }
        assert_eq!(inspect.requests().len(), before, "nothing was sent");
    }
    // `/`, `?` and `#` are encoded: the id reaches the emulator whole.
    let odd = "a/b?c=1#d";
    let created = table
        .create(&json!({"objectId": odd, "title": "odd"}))
        .await
        .unwrap();
    assert_eq!(created.object_id, odd);
    let found = table.find_by_id(odd).await.unwrap().unwrap();
    assert_eq!(found.data["title"], json!("odd"));
    table.delete(odd).await.unwrap();
    assert!(table.find_by_id(odd).await.unwrap().is_none());
}

#[tokio::test]
async fn cache_durations_out_of_range_are_refused_before_any_request() {
    let (sdk, inspect) = emulator().await;
    let key = sdk.server_key();
    let cache = key.cache();
    let refusals = [
        (
            cache
                .put("k", &1, Some(Duration::from_secs(7201)))
                .await
                .unwrap_err(),
            "ttl",
        ),
        (
            cache.put("k", &1, Some(Duration::ZERO)).await.unwrap_err(),
            "ttl",
        ),
        (
            cache
                .expire_at("k", SystemTime::now() + Duration::from_secs(7_200_000))
                .await
                .unwrap_err(),
            "expire_at",
        ),
        (
            cache
                .expire_at("k", SystemTime::now() - Duration::from_secs(1))
                .await
                .unwrap_err(),
            "expire_at",
        ),
    ];
    for (err, named) in refusals {
        assert!(
            matches!(err, SdkError::InvalidArgument { argument, .. } if argument == named),
            "{err:?}"
        );
    }
    assert!(inspect.requests().is_empty(), "nothing was sent");
}

#[test]
fn a_server_url_that_is_not_a_url_is_refused_without_the_key() {
    let err = Backendless::new(SdkConfig::new("not a url", APP, CLOUD.into())).unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::InvalidArgument {
                argument: "server_url",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(CLOUD), "{err}");
}
