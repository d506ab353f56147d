//! The examples of docs/protocol.md are what the daemon accepts and returns.

#[path = "../../handlers/mod.rs"]
mod handlers;

use coderunner::Registry;
use serde_json::Value;

use crate::support::TestRunner;

/// The (request, reply) pairs of the document, in order.
fn examples() -> Vec<(Value, Value)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    let mut blocks: Vec<(String, Value)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in doc.lines() {
        match &mut current {
            None => {
                if let Some(kind) = line.strip_prefix("```json ") {
                    current = Some((kind.trim().to_owned(), String::new()));
                }
            }
            Some((kind, text)) => {
                if line.trim() == "```" {
                    let value = serde_json::from_str(text)
                        .unwrap_or_else(|e| panic!("bad JSON in a `{kind}` block: {e}"));
                    blocks.push((kind.clone(), value));
                    current = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    let mut pairs = Vec::new();
    let mut iter = blocks.into_iter();
    while let Some((kind, request)) = iter.next() {
        assert_eq!(kind, "request");
        let (kind, reply) = iter.next().expect("each request has a reply");
        assert_eq!(kind, "reply");
        pairs.push((request, reply));
    }
    pairs
}

#[tokio::test]
async fn protocol_examples_are_what_the_daemon_does() {
    let mut registry = Registry::new();
    handlers::register(&mut registry).unwrap();
    let runner = TestRunner::start(registry).await;
    let pairs = examples();
    assert!(pairs.len() >= 3, "the document has its examples");
    for (request, expected) in pairs {
        let (status, reply) = runner.invoke(&request).await;
        assert_eq!(status, 200);
        assert_eq!(reply, expected, "reply to {}", request["id"]);
    }
}
