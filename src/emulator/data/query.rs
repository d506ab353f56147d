//! The query of the find and count routes: read from the URL or the body
//! ([`QueryInput`]) into the shape handlers receive (`whereClause`,
//! `pageSize`, `offset`, `sortBy`, `properties`), validated into a
//! [`FindQuery`], and the projection of the rows found.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::emulator::error::ApiError;
use crate::emulator::store::{FindQuery, Object};
use crate::emulator::where_clause::{compile, is_identifier};
use crate::emulator::{json_object, kind_of, query_map};

/// Where a find or count query comes from: the query string of a GET (or
/// HEAD), the JSON body of a POST. Read only when the route asks
/// ([`QueryInput::query`]), after it has checked the table name.
pub(crate) enum QueryInput {
    /// GET: `?where=&pageSize=&offset=&sortBy=&props=`.
    Url(Uri),
    /// POST: `{"where": ..., "pageSize": ...}`.
    Body(Bytes),
}

impl<S: Send + Sync> FromRequest<S> for QueryInput {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            return Ok(Self::Url(req.uri().clone()));
        }
        Bytes::from_request(req, state)
            .await
            .map(Self::Body)
            .map_err(IntoResponse::into_response)
    }
}

impl QueryInput {
    /// The query in the shape sent to handlers; 8002 when a body is not a
    /// JSON object.
    pub(super) fn query(&self) -> Result<Value, ApiError> {
        Ok(match self {
            Self::Url(uri) => query_json(&query_from_uri(uri)),
            Self::Body(body) => query_json(&json_object(body)?),
        })
    }
}

/// The query of find and count, in the shape sent to handlers.
fn query_json(raw: &Map<String, Value>) -> Value {
    let list = |v: Option<&Value>| -> Value {
        match v {
            Some(Value::String(s)) => Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            Some(Value::Array(a)) => Value::Array(a.clone()),
            _ => json!([]),
        }
    };
    json!({
        "whereClause": raw.get("where").or_else(|| raw.get("whereClause")).cloned().unwrap_or(Value::Null),
        "pageSize": raw.get("pageSize").cloned().unwrap_or(Value::Null),
        "offset": raw.get("offset").cloned().unwrap_or(Value::Null),
        "sortBy": list(raw.get("sortBy")),
        "properties": list(raw.get("props").or_else(|| raw.get("properties"))),
    })
}

fn number(v: &Value, name: &str, default: i64) -> Result<i64, ApiError> {
    match v {
        Value::Null => Ok(default),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ApiError::parse(format!("{name} must be an integer"))),
        Value::String(s) if s.trim().is_empty() => Ok(default),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::parse(format!("{name} must be an integer"))),
        _ => Err(ApiError::parse(format!("{name} must be an integer"))),
    }
}

/// Validates a query (in [`query_json`]'s shape) into a [`FindQuery`] and the props.
pub(super) fn parse_query(q: &Value) -> Result<(FindQuery, Vec<String>), ApiError> {
    let clause = match &q["whereClause"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => {
            return Err(ApiError::invalid_where(format!(
                "expected a string, got {}",
                kind_of(other)
            )))
        }
    };
    let page_size = number(&q["pageSize"], "pageSize", 10)?;
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::parse("pageSize must be between 1 and 100"));
    }
    let offset = number(&q["offset"], "offset", 0)?;
    if offset < 0 {
        return Err(ApiError::parse("offset must not be negative"));
    }
    let mut sort = Vec::new();
    for s in q["sortBy"].as_array().into_iter().flatten() {
        let s = s.as_str().unwrap_or_default().trim();
        let mut words = s.split_whitespace();
        let name = words.next().unwrap_or_default();
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(ApiError::parse(format!("invalid sortBy `{s}`"))),
        };
        if !is_identifier(name) || words.next().is_some() {
            return Err(ApiError::parse(format!("invalid sortBy `{s}`")));
        }
        sort.push((name.to_owned(), desc));
    }
    let mut props = Vec::new();
    for p in q["properties"].as_array().into_iter().flatten() {
        let p = p.as_str().unwrap_or_default().trim();
        if p == "*" {
            props.clear();
            break;
        }
        if !is_identifier(p) {
            return Err(ApiError::parse(format!("invalid property `{p}` in props")));
        }
        props.push(p.to_owned());
    }
    Ok((
        FindQuery {
            condition: compile(&clause)?,
            sort,
            page_size: page_size as u32,
            offset: offset as u64,
        },
        props,
    ))
}

pub(super) fn project(rows: Vec<Object>, props: &[String]) -> Value {
    Value::Array(
        rows.into_iter()
            .map(|mut row| {
                if !props.is_empty() {
                    row.retain(|k, _| k == "___class" || k == "objectId" || props.contains(k));
                }
                Value::Object(row)
            })
            .collect(),
    )
}

fn query_from_uri(uri: &Uri) -> Map<String, Value> {
    query_map(uri)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}
