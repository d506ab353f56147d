//! Where clauses through the HTTP API: every operator, injection attempts
//! handled as data, 1017 for garbage.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{CLOUD, JS, TestApp};

async fn names(app: &TestApp, clause: &str) -> Vec<String> {
    let rows = app
        .call(
            Method::POST,
            JS,
            "data/Item/find",
            None,
            Some(json!({"where": clause, "sortBy": "name", "pageSize": 100})),
        )
        .await
        .ok();
    rows.as_array()
        .unwrap_or_else(|| panic!("{clause}: {rows}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_operator() {
    let app = TestApp::dev().await;
    let items = json!([
        {"name": "a", "n": 1, "price": 1.5, "active": true, "tag": "red"},
        {"name": "b", "n": 2, "price": 2.5, "active": false, "tag": "green"},
        {"name": "c", "n": 3, "price": 3.5, "active": true, "tag": null},
        {"name": "d", "n": 4, "price": 4.5, "active": false},
    ]);
    app.call(Method::POST, CLOUD, "data/bulk/Item", None, Some(items))
        .await
        .ok();
    let cases: &[(&str, &[&str])] = &[
        ("n = 2", &["b"]),
        ("n != 2", &["a", "c", "d"]),
        ("n <> 2", &["a", "c", "d"]),
        ("n < 2", &["a"]),
        ("n <= 2", &["a", "b"]),
        ("n > 3", &["d"]),
        ("n >= 3", &["c", "d"]),
        ("price > 2.0 AND price < 4", &["b", "c"]),
        ("name LIKE 'a%'", &["a"]),
        ("tag like '%ee%'", &["b"]),
        ("tag NOT LIKE 'r%'", &["b"]),
        ("name IN ('a', 'c', 'zz')", &["a", "c"]),
        ("n NOT IN (1, 2)", &["c", "d"]),
        ("tag IS NULL", &["c", "d"]),
        ("tag IS NOT NULL", &["a", "b"]),
        ("active = true", &["a", "c"]),
        ("active = FALSE", &["b", "d"]),
        ("n = 1 OR n = 4", &["a", "d"]),
        ("NOT (n = 1 OR n = 4)", &["b", "c"]),
        ("(n = 1 OR n = 2) AND active = true", &["a"]),
        ("n = 1 OR n = 2 AND active = true", &["a"]),
        ("not n > 1 or name = 'd'", &["a", "d"]),
        (
            "objectId IS NOT NULL AND ownerId IS NULL AND ___class = 'Item'",
            &["a", "b", "c", "d"],
        ),
        ("created > 0 and updated is null", &["a", "b", "c", "d"]),
        ("", &["a", "b", "c", "d"]),
    ];
    for (clause, expected) in cases {
        assert_eq!(names(&app, clause).await, *expected, "{clause}");
    }
}

#[tokio::test]
async fn injection_attempts_are_data() {
    let app = TestApp::dev().await;
    let nasty = [
        "it's",
        "'; DROP TABLE objects; --",
        "x' OR '1'='1",
        "SELECT * FROM credentials",
        "a;b",
        "\" OR 1=1 --",
    ];
    for (i, s) in nasty.iter().enumerate() {
        app.call(
            Method::POST,
            CLOUD,
            "data/Item",
            None,
            Some(json!({"name": format!("n{i}"), "text": s})),
        )
        .await
        .ok();
    }
    for (i, s) in nasty.iter().enumerate() {
        let clause = format!("text = '{}'", s.replace('\'', "''"));
        assert_eq!(
            names(&app, &clause).await,
            vec![format!("n{i}")],
            "{clause}"
        );
    }
    // Unescaped quotes break the clause: an error, never a wider match.
    for clause in [
        "text = 'x' OR '1'='1' --'",
        "text = ''; DROP TABLE objects; --'",
        "name = 'a'; DELETE FROM objects",
        "name = 'a' UNION SELECT body FROM objects",
        "json_extract(body, '$.x') = 1",
    ] {
        let r = app
            .call(
                Method::POST,
                JS,
                "data/Item/find",
                None,
                Some(json!({"where": clause})),
            )
            .await;
        r.err(1017, 400);
    }
    let n = app
        .call(Method::GET, JS, "data/Item/count", None, None)
        .await
        .ok();
    assert_eq!(n, json!(nasty.len()), "nothing was dropped or deleted");
    // SQL keywords as values and LIKE with quotes.
    let like = names(&app, "text LIKE '%DROP TABLE%'").await;
    assert_eq!(like, vec!["n1"]);
}

#[tokio::test]
async fn garbage_is_1017_on_every_route() {
    let app = TestApp::dev().await;
    for clause in [
        "n ==",
        "n = = 1",
        "(n = 1",
        "n IN ()",
        "n = 'x",
        "1 = n",
        "n = 1 AND",
        "n ~ 1",
        "n is 3",
    ] {
        let enc: String =
            percent_encoding::utf8_percent_encode(clause, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        for (method, path, body) in [
            (Method::GET, format!("data/Item?where={enc}"), None),
            (Method::GET, format!("data/Item/count?where={enc}"), None),
            (
                Method::POST,
                "data/Item/find".to_owned(),
                Some(json!({"where": clause})),
            ),
            (
                Method::POST,
                "data/Item/count".to_owned(),
                Some(json!({"where": clause})),
            ),
            (
                Method::PUT,
                format!("data/bulk/Item?where={enc}"),
                Some(json!({"a": 1})),
            ),
            (Method::DELETE, format!("data/bulk/Item?where={enc}"), None),
            (
                Method::POST,
                "data/bulk/Item/delete".to_owned(),
                Some(json!({"where": clause})),
            ),
        ] {
            let r = app.call(method.clone(), CLOUD, &path, None, body).await;
            assert_eq!(r.code(), Some(1017), "{method} {path}: {}", r.body);
        }
    }
    let r = app
        .call(
            Method::POST,
            JS,
            "data/Item/find",
            None,
            Some(json!({"where": 5})),
        )
        .await;
    r.err(1017, 400);
}
