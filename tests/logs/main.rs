//! The log output of a realistic flow, captured at trace level for the
//! project (debug for the HTTP stack), holds no password, user token, API key
//! or webhook secret. One test in its own binary: it installs the global
//! subscriber, which the runner's and the emulator's spawned tasks need.

#[path = "../sdk/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::Arc;

use coderunner::emulator::EmulatorConfig;
use coderunner::event::{persistence, user};
use coderunner::{After, Before, Context, HandlerError, Outcome, Registry};
use helpers::*;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// The captured output.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.after(
        persistence::AFTER_CREATE,
        "Post",
        |ctx: Context, post: Value, _r: Outcome<Value>| async move {
            let row = json!({"title": post["title"]});
            // 1011: the key alone may not create Latest_post.
            let denied = ctx
                .server_key()
                .table::<Value>("Latest_post")
                .create(&row)
                .await;
            assert_eq!(denied.unwrap_err().code(), Some(1011));
            ctx.caller()
                .table::<Value>("Latest_post")
                .create(&row)
                .await?;
            ctx.superuser()
                .table::<Value>("Audit_log")
                .create(&row)
                .await?;
            ctx.superuser().users().roles().await?;
            ctx.server_key().cache().put("last", &row, None).await?;
            // A token in a path: logged as `[redacted]`.
            let token = ctx.runner().user_token.clone().expect("a caller");
            assert!(ctx.server_key().users().is_valid_token(&token).await?);
            if post["title"] == "fail" {
                return Err(HandlerError::new(4001, "refused by the handler"));
            }
            Ok(After::<Value>::Keep)
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_CREATE,
        "Probe",
        |ctx: Context, item: Value| async move {
            // The caller's token has expired: 3064, surfaced as an error.
            ctx.caller()
                .table::<Value>("Latest_post")
                .create(&item)
                .await?;
            Ok(Before::Continue(item))
        },
    )
    .unwrap();
    r.before(
        user::BEFORE_LOGIN,
        "*",
        |_ctx: Context, args: (String, String)| async move { Ok(Before::Continue(args)) },
    )
    .unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_logs_no_secret() {
    let buffer = Buffer::default();
    // Both output formats of the runner (`[log] format`): text and JSON.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(
            "trace,hyper=debug,hyper_util=debug,h2=debug,rustls=debug,reqwest=debug,tower=debug",
        ))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(buffer.clone()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(buffer.clone()),
        )
        .init();

    let stack = Stack::start(EmulatorConfig::dev(), registry(), "").await;
    let (alice, alice_id) = stack.login("alice@example.com", "alice-pass").await;
    let (bob, _) = stack.login("bob@example.com", "bob-pass").await;

    let post = |token: String, title: &'static str| {
        let stack = &stack;
        async move {
            stack
                .rest(
                    reqwest::Method::POST,
                    REST,
                    "data/Post",
                    Some(&token),
                    Some(json!({ "title": title })),
                )
                .await
        }
    };
    assert_eq!(post(alice.clone(), "hello").await.0, 200);
    assert_eq!(post(bob.clone(), "hi").await.0, 200);
    let (status, body) = post(alice.clone(), "fail").await;
    assert_eq!(status, 400, "{body}");

    // The superuser's session ends: one re-login.
    stack.inspect.expire_sessions(ADMIN);
    assert_eq!(post(bob.clone(), "again").await.0, 200);
    assert_eq!(stack.inspect.login_count(ADMIN), 2);

    // An expired caller token, sent in a task.
    stack.inspect.expire_sessions("alice@example.com");
    let (status, reply) = stack
        .invoke(&before_create(
            "expired-caller",
            "Probe",
            context(Some((&alice_id, &alice))),
            json!({"title": "x"}),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(exception(&reply).map(|e| e.0), Some(3064), "{reply}");

    // A task signed with another secret.
    let wrong = coderunner::signature::WebhookSecret::parse(
        "whsec_YW5vdGhlci1zZWNyZXQtdXNlZC1mb3Itcm90YXRpb24=",
    )
    .unwrap();
    let body = serde_json::to_vec(&before_create(
        "forged",
        "Probe",
        context(Some((&alice_id, &alice))),
        json!({}),
    ))
    .unwrap();
    let mut req = stack
        .http
        .post(format!("http://{}/invoke", stack.runner))
        .header("content-type", "application/json");
    for (name, value) in wrong.sign_headers(&body) {
        req = req.header(name, value);
    }
    assert_eq!(req.body(body).send().await.unwrap().status(), 401);

    // Every token the backend saw in the flow.
    let mut tokens: Vec<String> = stack
        .inspect
        .requests()
        .into_iter()
        .filter_map(|r| r.user_token)
        .collect();
    tokens.sort();
    tokens.dedup();
    assert!(tokens.len() >= 4, "alice, bob and two superuser sessions");
    drop(stack);

    let logs = String::from_utf8(buffer.0.lock().clone()).unwrap();
    let mut secrets: Vec<(String, String)> = tokens
        .into_iter()
        .map(|t| ("a user token".to_owned(), t))
        .collect();
    for (what, s) in [
        ("a password", "alice-pass"),
        ("a password", "bob-pass"),
        ("a password", ADMIN_PASS),
        ("an API key", CLOUD),
        ("an API key", REST),
        ("the webhook secret", SECRET),
        ("the webhook secret", SECRET.trim_start_matches("whsec_")),
    ] {
        secrets.push((what.to_owned(), s.to_owned()));
    }
    for (what, secret) in &secrets {
        if let Some(at) = logs.find(secret.as_str()) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!("the logs hold {what}:\n{}", &logs[line_start..line_end]);
        }
    }
    for expected in [
        "backend call",
        "superuser logged in",
        "the superuser token was rejected",
        "identity=caller",
        "identity=server_key",
        "[redacted]",
        r#""message":"backend call""#,
    ] {
        assert!(
            logs.contains(expected),
            "no {expected:?} in the logs:\n{logs}"
        );
    }
}
