//! The two markers of Backendless's JSON that a task's byte-encoded
//! arguments may carry (spec §2.4), resolved on the way in so that handlers
//! see plain JSON:
//!
//! - `{"___objectref": n}` stands for the n-th object or array of the
//!   document in pre-order (the root is 0; arrays count, references do
//!   not); it becomes a copy of that value. A reference to a value that
//!   encloses it (a cycle) becomes `null`.
//! - `"___dates___": ["<ms>", ...]` lists which string fields of the object
//!   holding it are dates; they become numbers (milliseconds since the
//!   epoch, as the REST API writes dates) and the marker is removed.

use serde_json::Value;

/// The reference marker's key.
pub const OBJECT_REF: &str = "___objectref";
/// The date marker's key.
pub const DATES: &str = "___dates___";

/// Whether a JSON text may hold either marker (a cheap test on the bytes, so
/// that documents without them are not walked).
pub fn may_have_markers(json: &[u8]) -> bool {
    memfind(json, OBJECT_REF.as_bytes()) || memfind(json, DATES.as_bytes())
}

fn memfind(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A step from a value to one of its children.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Index(usize),
    Key(String),
}

fn at_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, step| match (v, step) {
        (Value::Array(items), Step::Index(i)) => items.get_mut(*i),
        (Value::Object(map), Step::Key(k)) => map.get_mut(k),
        _ => None,
    })
}

fn at<'a>(root: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, step| match (v, step) {
        (Value::Array(items), Step::Index(i)) => items.get(*i),
        (Value::Object(map), Step::Key(k)) => map.get(k),
        _ => None,
    })
}

fn as_reference(value: &Value) -> Option<usize> {
    match value {
        Value::Object(map) if map.len() == 1 => map
            .get(OBJECT_REF)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

/// Numbers the objects and arrays in pre-order and lists every reference
/// with the path of the value it points to.
fn collect(
    value: &Value,
    path: &mut Vec<Step>,
    numbered: &mut Vec<Vec<Step>>,
    references: &mut Vec<(Vec<Step>, usize)>,
) {
    if let Some(n) = as_reference(value) {
        references.push((path.clone(), n));
        return;
    }
    match value {
        Value::Array(items) => {
            numbered.push(path.clone());
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                collect(item, path, numbered, references);
                path.pop();
            }
        }
        Value::Object(map) => {
            numbered.push(path.clone());
            for (key, item) in map {
                path.push(Step::Key(key.clone()));
                collect(item, path, numbered, references);
                path.pop();
            }
        }
        _ => {}
    }
}

fn resolve_references(root: &mut Value) {
    let mut numbered = Vec::new();
    let mut references = Vec::new();
    collect(root, &mut Vec::new(), &mut numbered, &mut references);
    // In pre-order, so a referenced value's own references are resolved
    // before it is copied.
    for (path, n) in references {
        let copy = numbered
            .get(n)
            .filter(|target| !path.starts_with(target))
            .and_then(|target| at(root, target))
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(slot) = at_mut(root, &path) {
            *slot = copy;
        }
    }
}

fn resolve_dates(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(resolve_dates),
        Value::Object(map) => {
            if let Some(Value::Array(dates)) = map.remove(DATES) {
                for (_, field) in map.iter_mut() {
                    let is_date = field
                        .as_str()
                        .is_some_and(|s| dates.iter().any(|d| d.as_str() == Some(s)));
                    if let Some(ms) = field
                        .as_str()
                        .filter(|_| is_date)
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        *field = Value::from(ms);
                    }
                }
            }
            map.values_mut().for_each(resolve_dates);
        }
        _ => {}
    }
}

/// Resolves both markers in a decoded document (the whole arguments array).
pub fn resolve(root: &mut Value) {
    resolve_references(root);
    resolve_dates(root);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_count_objects_and_arrays_in_pre_order() {
        // 0 = root, 1 = ctx, 2 = userRoles, 3 = prematureResult, 4 = the item.
        let mut doc = json!([
            {"userRoles": ["A"], "prematureResult": {"replaced": true}},
            {"title": "x"},
            {"result": {"___objectref": 3}, "same": {"___objectref": 4}}
        ]);
        resolve(&mut doc);
        assert_eq!(doc[2]["result"], json!({"replaced": true}));
        assert_eq!(doc[2]["same"], json!({"title": "x"}));
    }

    #[test]
    fn a_reference_inside_a_referenced_value_is_resolved_first() {
        let mut doc =
            json!([{"a": {"k": 1}, "b": {"inner": {"___objectref": 2}}}, {"___objectref": 3}]);
        resolve(&mut doc);
        assert_eq!(doc[1], json!({"inner": {"k": 1}}));
    }

    #[test]
    fn cycles_and_dangling_references_become_null() {
        let mut doc = json!([{"self": {"___objectref": 1}, "far": {"___objectref": 99}}]);
        resolve(&mut doc);
        assert_eq!(doc, json!([{"self": null, "far": null}]));
    }

    #[test]
    fn dates_become_milliseconds_and_the_marker_goes() {
        let mut doc = json!([{"___class": "Post", "title": "1764460800000", "when": "1764460800000",
                              "___dates___": ["1764460800000"], "n": {"at": "5", "___dates___": ["5"]}}]);
        resolve(&mut doc);
        assert_eq!(doc[0]["when"], json!(1_764_460_800_000_i64));
        // Every field with a listed value is a date, as the official reader takes it.
        assert_eq!(doc[0]["title"], json!(1_764_460_800_000_i64));
        assert_eq!(doc[0]["n"], json!({"at": 5}));
        assert!(doc[0].get(DATES).is_none());
    }

    #[test]
    fn the_byte_test_finds_either_marker() {
        assert!(may_have_markers(br#"{"___objectref":1}"#));
        assert!(may_have_markers(br#"{"___dates___":[]}"#));
        assert!(!may_have_markers(br#"{"title":"x"}"#));
    }
}
