//! `coderunner invoke` replays a recorded task as another user.

use coderunner::testing::TestApp;
use serde_json::{Value, json};

use crate::handlers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_after_create_replayed_as_bob_creates_a_row_owned_by_bob() {
    let records = tempfile::tempdir().unwrap();
    let stack = TestApp::builder()
        .register(handlers::register)
        .record_dir(records.path())
        .start()
        .await;
    let http = reqwest::Client::new();
    let root = stack.api_root("dev-rest-key");

    let login: Value = http
        .post(format!("{root}/users/login"))
        .json(&json!({"login": "alice@example.com", "password": "alice-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let post: Value = http
        .post(format!("{root}/data/Post"))
        .header("user-token", login["user-token"].as_str().unwrap())
        .json(&json!({"title": "recorded"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let post_id = post["objectId"].as_str().unwrap().to_owned();

    let recorded = std::fs::read_dir(records.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("-afterCreate-")
        })
        .expect("the afterCreate task was recorded");

    let bob_id = stack
        .emulator()
        .inspect()
        .rows("Users")
        .into_iter()
        .find(|u| u["email"] == "bob@example.com")
        .unwrap()["objectId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (runner_url, emulator_url) = (
        stack.runner_url().to_owned(),
        stack.emulator_url().to_owned(),
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_coderunner"))
            .args(["invoke", "--file"])
            .arg(&recorded)
            .args([
                "--as",
                "bob@example.com",
                "--runner",
                &runner_url,
                "--backend",
                &emulator_url,
            ])
            .env_remove("CODERUNNER_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "invoke failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_str(&stdout).expect("invoke prints the reply as JSON");
    assert!(reply["exception"].is_null(), "{reply}");

    let rows: Vec<Value> = stack
        .emulator()
        .inspect()
        .rows("Latest_post")
        .into_iter()
        .filter(|r| r["postId"] == json!(post_id))
        .collect();
    assert_eq!(rows.len(), 2, "the original and the replay");
    assert_eq!(
        rows[0]["ownerId"], login["objectId"],
        "the original is alice's"
    );
    assert_eq!(rows[1]["ownerId"], json!(bob_id), "the replay is bob's");
    stack.stop().await;
}
