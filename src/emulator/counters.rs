//! The app's atomic counters (spec §4.4), in memory, and their routes under
//! `/counters/`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::auth::Requester;
use super::error::ApiError;
use super::{PathParams, Reply, Shared, path_param, required_int};

/// Named atomic counters; a missing counter is 0.
#[derive(Default)]
pub(super) struct CounterStore {
    values: Mutex<BTreeMap<String, i64>>,
}

/// A counter operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CounterOp {
    /// Add `n`, return the new value.
    AddGet(i64),
    /// Add `n`, return the previous value.
    GetAdd(i64),
    /// Set to 0, return the previous value.
    Reset,
    /// The value.
    Get,
}

impl CounterStore {
    /// Applies `op` to `name`.
    pub(super) fn apply(&self, name: &str, op: CounterOp) -> i64 {
        let mut map = self.values.lock();
        let v = map.entry(name.to_owned()).or_insert(0);
        let before = *v;
        match op {
            CounterOp::AddGet(n) => {
                *v = v.wrapping_add(n);
                *v
            }
            CounterOp::GetAdd(n) => {
                *v = v.wrapping_add(n);
                before
            }
            CounterOp::Reset => {
                *v = 0;
                before
            }
            CounterOp::Get => before,
        }
    }

    /// Sets `name` to `updated` if it equals `expected`.
    pub(super) fn compare_and_set(&self, name: &str, expected: i64, updated: i64) -> bool {
        let mut map = self.values.lock();
        let v = map.entry(name.to_owned()).or_insert(0);
        if *v == expected {
            *v = updated;
            true
        } else {
            false
        }
    }

    /// Names matching a glob (`*` any run, `?` one character).
    pub(super) fn list(&self, pattern: &str) -> Vec<String> {
        self.values
            .lock()
            .keys()
            .filter(|k| glob(pattern.as_bytes(), k.as_bytes()))
            .cloned()
            .collect()
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// GET /counters/{name}
pub(crate) async fn counter_get(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
) -> Json<Value> {
    Json(Value::from(
        st.counters.apply(path_param(&p, "name"), CounterOp::Get),
    ))
}

/// PUT /counters/{name}/reset
pub(crate) async fn counter_reset(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
) -> Json<Value> {
    Json(Value::from(
        st.counters.apply(path_param(&p, "name"), CounterOp::Reset),
    ))
}

/// GET /counters/{pattern}/list
pub(crate) async fn counter_list(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
) -> Json<Value> {
    Json(json!(st.counters.list(path_param(&p, "name"))))
}

/// PUT /counters/{name}/get/compareandset?expected=&updatedvalue=
pub(crate) async fn counter_cas(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Reply {
    let expected = required_int(&uri, "expected")?;
    let updated = required_int(&uri, "updatedvalue")?;
    Ok(Json(Value::Bool(st.counters.compare_and_set(
        path_param(&p, "name"),
        expected,
        updated,
    ))))
}

/// PUT /counters/{name}/{increment|decrement|incrementby}/get and /get/{...}.
pub(crate) async fn counter_op(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Reply {
    let (a, b) = (path_param(&p, "a"), path_param(&p, "b"));
    let (verb, new_value) = match (a, b) {
        (v, "get") => (v, true),
        ("get", v) => (v, false),
        _ => return Err(ApiError::no_route()),
    };
    let delta = match verb {
        "increment" => 1,
        "decrement" => -1,
        "incrementby" => required_int(&uri, "value")?,
        _ => return Err(ApiError::no_route()),
    };
    let op = if new_value {
        CounterOp::AddGet(delta)
    } else {
        CounterOp::GetAdd(delta)
    };
    Ok(Json(Value::from(
        st.counters.apply(path_param(&p, "name"), op),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(b"*", b"abc"));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(!glob(b"b*", b"abc"));
    }
}
