//! Files, messaging, user management and the app log through the SDK,
//! against the project's emulator, under each identity each area allows,
//! with the permission failures and their codes.

use bytes::Bytes;
use coderunner::emulator::{Emulator, EmulatorConfig, Inspector};
use coderunner::event::UserToken;
use coderunner::sdk::{
    Backendless, Email, EmailEnvelope, IdentityKind, Listing, PublishOptions, Query, SdkConfig,
    SdkError, SuperuserCredentials, UserStatus,
};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, ADMIN_PASS, APP, CLOUD, REST, api_path};

/// The dev emulator; an SDK with the CloudCode key (the admin as superuser)
/// and one with the REST key; the emulator's URL.
async fn stack() -> (Backendless, Backendless, Inspector, String) {
    let emulator = Emulator::new(EmulatorConfig::dev()).unwrap();
    let inspect = emulator.inspect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.serve(listener, std::future::pending()));
    let mut cloud = SdkConfig::new(url.clone(), APP, CLOUD.into());
    cloud.superuser = Some(SuperuserCredentials {
        login: ADMIN.into(),
        password: ADMIN_PASS.into(),
    });
    let rest = SdkConfig::new(url.clone(), APP, REST.into());
    (
        Backendless::new(cloud).unwrap(),
        Backendless::new(rest).unwrap(),
        inspect,
        url,
    )
}

async fn login(sdk: &Backendless, email: &str, password: &str) -> (UserToken, String) {
    let logged = sdk
        .server_key()
        .users()
        .login(email, &password.into())
        .await
        .unwrap();
    (logged.token, logged.user.object_id)
}

fn code(result: Result<impl std::fmt::Debug, SdkError>) -> Option<i64> {
    match result {
        Err(e) => e.code(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[tokio::test]
async fn files_round_trip_under_each_identity_with_permissions() {
    let _lock = crate::helpers::login_metric_lock().await;
    let (cloud, rest, inspect, url) = stack().await;
    let (alice, alice_id) = login(&cloud, "alice@example.com", "alice-pass").await;

    // The server key writes the private directory; its URL names the file.
    let key = cloud.server_key();
    let url_of = key
        .files()
        .upload("/private/reports/q1.txt", b"q1 figures".to_vec(), false)
        .await
        .unwrap();
    assert_eq!(url_of.path(), "private/reports/q1.txt");
    assert!(url_of.as_str().starts_with(&url), "{}", url_of.as_str());
    assert!(!format!("{url_of:?}").contains(CLOUD));
    // No overwrite: 6003.
    assert_eq!(
        code(
            key.files()
                .upload("private/reports/q1.txt", b"again".to_vec(), false)
                .await
        ),
        Some(6003)
    );

    // The caller (alice's token) reads and writes it; the superuser too.
    let caller = cloud.caller(Some(alice.clone()));
    let bytes = caller
        .files()
        .download("private/reports/q1.txt")
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"q1 figures");
    let saved = caller
        .files()
        .save("private/reports/q2.txt", b"q2 figures", false)
        .await
        .unwrap();
    assert_eq!(saved.path(), "private/reports/q2.txt");
    let chunks = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from_static(b"streamed ")),
        Ok(Bytes::from_static(b"upload")),
    ]);
    cloud
        .superuser()
        .files()
        .upload_stream("private/reports/q3.csv", chunks, true)
        .await
        .unwrap();
    assert_eq!(
        &caller
            .files()
            .download("private/reports/q3.csv")
            .await
            .unwrap()[..],
        b"streamed upload"
    );
    let uploads: Vec<_> = inspect
        .requests()
        .into_iter()
        .filter(|r| api_path(&r.path) == "files/binary/private/reports/q2.txt")
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].user_id.as_deref(),
        Some(alice_id.as_str()),
        "the save went out as the caller"
    );

    // Listing with a pattern and paging; exists.
    let all = caller
        .files()
        .list("private/reports", &Listing::new())
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["q1.txt", "q2.txt", "q3.csv"]);
    assert_eq!(all[0].url, "private/reports/q1.txt");
    assert_eq!(all[0].size, Some(10));
    let txt = caller
        .files()
        .list("private", &Listing::new().pattern("*.txt").recursive(true))
        .await
        .unwrap();
    assert_eq!(txt.len(), 2);
    let page = caller
        .files()
        .list("private/reports", &Listing::new().page_size(1).offset(1))
        .await
        .unwrap();
    assert_eq!(page[0].name, "q2.txt");
    assert!(
        caller
            .files()
            .exists("private/reports/q1.txt")
            .await
            .unwrap()
    );
    assert!(!caller.files().exists("private/nothing.txt").await.unwrap());

    // Copy, move, rename, remove (delete is business logic's only).
    let copy = key
        .files()
        .copy("private/reports/q1.txt", "private/archive/q1.txt")
        .await
        .unwrap();
    assert_eq!(copy, "/private/archive/q1.txt");
    key.files()
        .move_to("private/reports/q2.txt", "private/archive/q2.txt")
        .await
        .unwrap();
    let renamed = key
        .files()
        .rename("private/archive/q2.txt", "second.txt")
        .await
        .unwrap();
    assert_eq!(renamed, "/private/archive/second.txt");
    let archive: Vec<String> = key
        .files()
        .list("private/archive", &Listing::new())
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(archive, ["q1.txt", "second.txt"]);
    key.files().remove("private/archive/q1.txt").await.unwrap();
    let missing = key.files().download("private/archive/q1.txt").await;
    let err = missing.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(6000), Some(404)));
    key.files()
        .remove_directory("private/archive")
        .await
        .unwrap();
    assert!(!key.files().exists("private/archive").await.unwrap());

    // Without the CloudCode key, anonymous: /private is closed (6006),
    // other directories are open.
    let anonymous = rest.server_key();
    assert_eq!(
        code(anonymous.files().download("private/reports/q1.txt").await),
        Some(6006)
    );
    assert_eq!(
        code(
            anonymous
                .files()
                .upload("private/x.txt", b"x".to_vec(), true)
                .await
        ),
        Some(6006)
    );
    anonymous
        .files()
        .upload("public/hello.txt", b"hi".to_vec(), true)
        .await
        .unwrap();
    // A logged-in REST caller may read and write /private but not delete.
    let (bob, _) = login(&rest, "bob@example.com", "bob-pass").await;
    let bob = rest.caller(Some(bob));
    bob.files()
        .upload("private/bob.txt", b"b".to_vec(), true)
        .await
        .unwrap();
    assert_eq!(
        code(bob.files().remove("private/bob.txt").await),
        Some(6006)
    );

    // Paths that would leave the storage never leave the SDK; sent raw they
    // are refused.
    assert!(matches!(
        key.files().download("private/../../etc/passwd").await,
        Err(SdkError::InvalidArgument { .. })
    ));
    let raw = reqwest::Client::new()
        .get(format!(
            "{url}/{APP}/{REST}/files/a%2F..%2F..%2Fetc%2Fpasswd"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["code"], json!(6024), "{body}");
}

#[tokio::test]
async fn messages_pushes_and_emails_are_captured_not_sent() {
    let _lock = crate::helpers::login_metric_lock().await;
    let (cloud, rest, inspect, url) = stack().await;
    let (alice, alice_id) = login(&cloud, "alice@example.com", "alice-pass").await;
    let caller = cloud.caller(Some(alice));

    let status = caller
        .messaging()
        .publish(
            "orders",
            &json!({"id": 7}),
            &PublishOptions::new()
                .header("kind", "new")
                .subtopic("eu.north"),
        )
        .await
        .unwrap();
    assert!(!status.message_id.is_empty());
    let key = cloud.server_key();
    key.messaging()
        .push_to_devices(
            "default",
            "Your order shipped",
            ["DEVICE-1", "DEVICE-2"],
            &PublishOptions::new().header("ios-alert", "Shipped"),
        )
        .await
        .unwrap();
    key.messaging()
        .push_with_template("shipped", Some(&json!({"order": 7})))
        .await
        .unwrap();
    let messages = inspect.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].message_id, status.message_id);
    assert_eq!(
        (messages[0].kind.as_str(), messages[0].channel.as_deref()),
        ("publish", Some("orders"))
    );
    assert_eq!(messages[0].message, json!({"id": 7}));
    assert_eq!(messages[0].headers, json!({"kind": "new"}));
    assert_eq!(messages[0].subtopic.as_deref(), Some("eu.north"));
    assert_eq!(messages[0].user_id.as_deref(), Some(alice_id.as_str()));
    assert_eq!(messages[1].kind, "push");
    assert_eq!(messages[1].devices, ["DEVICE-1", "DEVICE-2"]);
    assert_eq!(messages[1].user_id, None);
    assert_eq!(
        (messages[2].kind.as_str(), messages[2].template.as_deref()),
        ("pushTemplate", Some("shipped"))
    );

    cloud
        .superuser()
        .messaging()
        .send_email(
            &Email::new("Order 7")
                .text("It ships today.")
                .html("<b>It ships today.</b>")
                .to("alice@example.com")
                .attach("private/reports/q1.txt"),
        )
        .await
        .unwrap();
    rest.server_key()
        .messaging()
        .send_email_template(
            "welcome",
            &EmailEnvelope::to(["bob@example.com"]).cc(["audit@example.com"]),
            Some(&json!({"name": "Bob"})),
        )
        .await
        .unwrap();
    let emails = inspect.emails();
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[0].subject.as_deref(), Some("Order 7"));
    assert_eq!(emails[0].to, ["alice@example.com"]);
    assert_eq!(emails[0].attachments, ["private/reports/q1.txt"]);
    assert_eq!(emails[1].template.as_deref(), Some("welcome"));
    assert_eq!(emails[1].cc, ["audit@example.com"]);
    assert_eq!(emails[1].template_values, json!({"name": "Bob"}));

    // Bad input: refused by the SDK before a request, and by the emulator
    // with a code when sent raw.
    assert!(matches!(
        key.messaging()
            .send_email(&Email::new("no body").to("a@b.c"))
            .await,
        Err(SdkError::InvalidArgument { .. })
    ));
    assert!(matches!(
        key.messaging()
            .publish("a/b", &json!(1), &PublishOptions::new())
            .await,
        Err(SdkError::InvalidArgument { .. })
    ));
    let raw: Value = reqwest::Client::new()
        .post(format!("{url}/{APP}/{REST}/messaging/email"))
        .json(&json!({"subject": "s", "bodyparts": {"textmessage": "t"}, "to": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["code"], json!(5050), "{raw}");
    // Over HTTP, behind the inspection guard.
    let shown: Value = reqwest::get(format!("{url}/__emulator/emails"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown.as_array().map(Vec::len), Some(2));
    let shown: Value = reqwest::get(format!("{url}/__emulator/messages"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown[1]["devices"], json!(["DEVICE-1", "DEVICE-2"]));
}

#[tokio::test]
async fn user_management_roles_status_and_recovery() {
    let _lock = crate::helpers::login_metric_lock().await;
    let (cloud, rest, inspect, _) = stack().await;
    let key = cloud.server_key();
    let (alice, alice_id) = login(&cloud, "alice@example.com", "alice-pass").await;
    let (_, bob_id) = login(&cloud, "bob@example.com", "bob-pass").await;

    // Find by query and by id; update.
    let found = key
        .users()
        .find::<Value>(
            &Query::new()
                .where_clause("email LIKE '%@example.com'")
                .sort_by("email"),
        )
        .await
        .unwrap();
    let emails: Vec<&str> = found
        .iter()
        .filter_map(|u| u.data["email"].as_str())
        .collect();
    assert_eq!(
        emails,
        ["admin@example.com", "alice@example.com", "bob@example.com"]
    );
    let caller = cloud.caller(Some(alice.clone()));
    let me = caller
        .users()
        .update::<_, Value>(&alice_id, &json!({"nickname": "al"}))
        .await
        .unwrap();
    assert_eq!(me.data["nickname"], "al");
    // A REST caller updates only themselves (1012); the server key anyone.
    let (rest_alice, _) = login(&rest, "alice@example.com", "alice-pass").await;
    let rest_alice = rest.caller(Some(rest_alice));
    assert_eq!(
        code(
            rest_alice
                .users()
                .update::<_, Value>(&bob_id, &json!({"nickname": "x"}))
                .await
        ),
        Some(1012)
    );
    key.users()
        .update::<_, Value>(&bob_id, &json!({"nickname": "b"}))
        .await
        .unwrap();

    // Roles: the server key only. Another identity fails before a request.
    let before = inspect.requests().len();
    for client in [cloud.caller(Some(alice.clone())), cloud.superuser()] {
        match client.users().assign_role(&alice_id, "Customer").await {
            Err(SdkError::WrongIdentity {
                needed: IdentityKind::ServerKey,
                ..
            }) => {}
            other => panic!("expected WrongIdentity, got {other:?}"),
        }
    }
    assert_eq!(inspect.requests().len(), before, "no request went out");
    // The server key of a REST app is not the CloudCode key: 2011.
    assert_eq!(
        code(
            rest.server_key()
                .users()
                .assign_role(&alice_id, "Customer")
                .await
        ),
        Some(2011)
    );
    key.users()
        .assign_role("alice@example.com", "Customer")
        .await
        .unwrap();
    assert!(
        caller
            .users()
            .roles()
            .await
            .unwrap()
            .contains(&"Customer".to_owned())
    );
    key.users()
        .unassign_role(&alice_id, "Customer")
        .await
        .unwrap();
    assert!(
        !caller
            .users()
            .roles()
            .await
            .unwrap()
            .contains(&"Customer".to_owned())
    );

    // Password recovery: an email, captured.
    key.users()
        .restore_password("bob@example.com")
        .await
        .unwrap();
    let recovery = inspect.emails();
    assert_eq!(
        (recovery[0].kind.as_str(), recovery[0].to.as_slice()),
        ("passwordRecovery", &["bob@example.com".to_owned()][..])
    );
    assert_eq!(
        code(key.users().restore_password("nobody@example.com").await),
        Some(3020)
    );

    // Disabling ends the sessions and refuses logins (3090); enabling
    // restores them. Only business logic may (2011).
    assert_eq!(
        code(rest.server_key().users().disable(&alice_id).await),
        Some(2011)
    );
    key.users().disable(&alice_id).await.unwrap();
    assert_eq!(code(caller.users().roles().await), Some(3064));
    let refused = key
        .users()
        .login("alice@example.com", &"alice-pass".into())
        .await;
    assert_eq!(code(refused), Some(3090));
    let row = key
        .users()
        .find_by_id::<Value>(&alice_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.data["userStatus"], UserStatus::Disabled.as_str());
    key.users().enable(&alice_id).await.unwrap();
    login(&cloud, "alice@example.com", "alice-pass").await;
}

/// A beforeCreate handler on `Report` using each area through `ctx`: the
/// reply's `prematureResult` says what each identity could do.
async fn report_handler(
    ctx: coderunner::Context,
    item: Value,
) -> Result<coderunner::Before<Value>, coderunner::HandlerError> {
    let err = |e: SdkError| coderunner::HandlerError::new(e.code().unwrap_or(0), e.to_string());
    let name = item["name"].as_str().unwrap_or("report.txt");
    let caller = ctx.caller();
    let url = caller
        .files()
        .upload(&format!("private/{name}"), b"from a handler".to_vec(), true)
        .await
        .map_err(err)?;
    let status = ctx
        .server_key()
        .messaging()
        .publish("reports", &json!({"name": name}), &PublishOptions::new())
        .await
        .map_err(err)?;
    let caller_roles = match caller
        .users()
        .assign_role(ctx.user_id().unwrap_or_default(), "Reporter")
        .await
    {
        Err(SdkError::WrongIdentity { .. }) => "refused before any request",
        other => panic!("a caller assigned a role: {other:?}"),
    };
    ctx.server_key()
        .users()
        .assign_role(ctx.user_id().unwrap_or_default(), "Reporter")
        .await
        .map_err(err)?;
    let log = caller.logger("reports");
    log.info(format!("report {name} stored"));
    log.flush().await.map_err(err)?;
    Ok(coderunner::Before::ShortCircuit(json!({
        "path": url.path(),
        "messageId": status.message_id,
        "callerRoles": caller_roles,
        "roles": caller.users().roles().await.map_err(err)?,
    })))
}

#[tokio::test]
async fn a_handler_uses_each_area_through_its_context() {
    let _lock = crate::helpers::login_metric_lock().await;
    let mut registry = coderunner::Registry::new();
    registry
        .before(
            coderunner::event::persistence::BEFORE_CREATE,
            "Report",
            report_handler,
        )
        .unwrap();
    let stack = crate::helpers::Stack::start(EmulatorConfig::dev(), registry, "").await;
    let (token, alice_id) = stack.login("alice@example.com", "alice-pass").await;
    let (status, reply) = stack
        .invoke(&crate::helpers::before_create(
            "report-1",
            "Report",
            crate::helpers::context(Some((&alice_id, &token))),
            json!({"name": "r1.txt"}),
        ))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(crate::helpers::exception(&reply), None, "{reply}");
    let args = reply["arguments"].as_array().expect("reply has arguments");
    let args: Value = if args.first().is_some_and(Value::is_number) {
        let bytes: Vec<u8> = args.iter().map(|v| v.as_u64().unwrap() as u8).collect();
        serde_json::from_slice(&bytes).unwrap()
    } else {
        Value::Array(args.clone())
    };
    let result = args[0]["prematureResult"].clone();
    assert_eq!(result["path"], "private/r1.txt", "{reply}");
    assert_eq!(result["callerRoles"], "refused before any request");
    assert!(
        result["roles"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("Reporter"))),
        "{result}"
    );
    let messages = stack.inspect.messages();
    assert_eq!(
        messages[0].message_id,
        result["messageId"].as_str().unwrap()
    );
    assert_eq!(messages[0].user_id, None, "published with the server key");
    let logged: Vec<_> = stack
        .inspect
        .log_messages()
        .into_iter()
        .filter(|m| m.logger == "reports")
        .collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].user_id.as_deref(), Some(alice_id.as_str()));
    // The upload went out with alice's token.
    let upload = stack
        .inspect
        .requests()
        .into_iter()
        .find(|r| api_path(&r.path) == "files/private/r1.txt")
        .unwrap();
    assert_eq!(upload.user_id.as_deref(), Some(alice_id.as_str()));
}

#[tokio::test]
async fn a_log_batch_the_backend_refuses_is_dropped_not_retried() {
    let (cloud, _, inspect, _) = stack().await;
    let stale = cloud
        .caller(Some(UserToken::new("STALE-TOKEN")))
        .logger("stale");
    stale.info("never accepted");
    let err = stale.flush().await.unwrap_err();
    assert_eq!(err.code(), Some(3064));
    // Nothing is left to send: the next flush sends nothing.
    let before = inspect.requests().len();
    stale.flush().await.unwrap();
    assert_eq!(inspect.requests().len(), before);
    assert!(inspect.log_messages().is_empty());
}
