//! The query of the find and count routes: read from the URL or the body
//! ([`QueryInput`]) into the shape handlers receive (`whereClause`,
//! `pageSize`, `offset`, `sortBy`, `properties`), validated into a
//! [`FindQuery`], and the projection of the rows found.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::emulator::error::ApiError;
use crate::emulator::store::{Aggregate, Column, FindQuery, Object, Selection};
use crate::emulator::where_clause::{compile, compile_having, is_identifier};
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
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| raw.get(*n))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "whereClause": field(&["where", "whereClause"]),
        "pageSize": field(&["pageSize"]),
        "offset": field(&["offset"]),
        "sortBy": list(raw.get("sortBy")),
        "properties": list(raw.get("props").or_else(|| raw.get("properties"))),
        "groupBy": list(raw.get("groupBy")),
        "havingClause": field(&["having", "havingClause"]),
        "distinct": field(&["distinct"]),
        "related": list(raw.get("loadRelations").or_else(|| raw.get("related"))),
        "relationsDepth": field(&["relationsDepth"]),
        "relationsPageSize": field(&["relationsPageSize"]),
    })
}

/// The relations a find or find-by-id embeds in each row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct RelationLoad {
    /// Relation columns named in `loadRelations` (first level).
    pub(super) names: Vec<String>,
    /// `loadRelations=*`: every relation column of the first level.
    pub(super) all: bool,
    /// `relationsDepth`: every relation down to this level.
    pub(super) depth: u32,
    /// Children per relation, 1..=100 (default 10).
    pub(super) page_size: u32,
}

/// The deepest `relationsDepth` accepted (a bound of the emulator's own).
pub(super) const MAX_RELATIONS_DEPTH: i64 = 10;

impl RelationLoad {
    /// Whether any relation is loaded.
    pub(super) fn any(&self) -> bool {
        self.all || self.depth > 0 || !self.names.is_empty()
    }

    /// Reads `related`, `relationsDepth` and `relationsPageSize` of a query
    /// in [`query_json`]'s shape.
    pub(super) fn parse(q: &Value) -> Result<Self, ApiError> {
        let mut load = RelationLoad {
            page_size: 10,
            ..Self::default()
        };
        for r in q["related"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default().trim();
            if r == "*" {
                load.all = true;
            } else if is_identifier(r) {
                load.names.push(r.to_owned());
            } else {
                return Err(ApiError::parse(format!(
                    "invalid relation `{r}` in loadRelations (relation paths are not emulated)"
                )));
            }
        }
        let depth = number(&q["relationsDepth"], "relationsDepth", 0)?;
        if !(0..=MAX_RELATIONS_DEPTH).contains(&depth) {
            return Err(ApiError::parse(format!(
                "relationsDepth must be between 0 and {MAX_RELATIONS_DEPTH}"
            )));
        }
        load.depth = depth as u32;
        let size = number(&q["relationsPageSize"], "relationsPageSize", 10)?;
        if !(1..=100).contains(&size) {
            return Err(ApiError::parse(
                "relationsPageSize must be between 1 and 100",
            ));
        }
        load.page_size = size as u32;
        Ok(load)
    }
}

/// A validated find query: the store's query, the properties to keep (plain
/// finds) and the relations to embed.
#[derive(Debug, Clone)]
pub(super) struct ParsedQuery {
    pub(super) find: FindQuery,
    pub(super) props: Vec<String>,
    pub(super) relations: RelationLoad,
}

/// The query string of a find by id or a relation load, in [`query_json`]'s shape.
pub(super) fn query_of_uri(uri: &Uri) -> Value {
    query_json(&query_from_uri(uri))
}

/// One entry of `props`: `name`, or `Func(name|*)`, either with `as alias`.
fn parse_prop(p: &str) -> Result<(Column, String), ApiError> {
    let bad = || ApiError::parse(format!("invalid property `{p}` in props"));
    let lower = p.to_ascii_lowercase();
    let (head, alias) = match lower.rfind(" as ") {
        Some(at) => (p[..at].trim(), Some(p[at + 4..].trim())),
        None => (p, None),
    };
    if let Some(alias) = alias {
        if !is_identifier(alias) {
            return Err(bad());
        }
    }
    let column = match head.split_once('(') {
        Some((func, rest)) => {
            let func = Aggregate::parse(func.trim()).ok_or_else(bad)?;
            let inner = rest.strip_suffix(')').ok_or_else(bad)?.trim();
            let prop = match inner {
                "*" => None,
                name if is_identifier(name) => Some(name.to_owned()),
                _ => return Err(bad()),
            };
            Column::Aggregate(func, prop)
        }
        None if is_identifier(head) => Column::Prop(head.to_owned()),
        None => return Err(bad()),
    };
    let name = match (&column, alias) {
        (_, Some(alias)) => alias.to_owned(),
        (Column::Prop(name), None) => name.clone(),
        (Column::Aggregate(func, _), None) => func.default_name().to_owned(),
    };
    Ok((column, name))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
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

/// Validates a query (in [`query_json`]'s shape).
pub(super) fn parse_query(q: &Value) -> Result<ParsedQuery, ApiError> {
    let clause = match &q["whereClause"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => {
            return Err(ApiError::invalid_where(format!(
                "expected a string, got {}",
                kind_of(other)
            )));
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
    let mut columns = Vec::new();
    let mut all_props = false;
    for p in q["properties"].as_array().into_iter().flatten() {
        let p = p.as_str().unwrap_or_default().trim();
        if p == "*" {
            all_props = true;
            continue;
        }
        columns.push(parse_prop(p)?);
    }
    let mut group_by = Vec::new();
    for g in q["groupBy"].as_array().into_iter().flatten() {
        let g = g.as_str().unwrap_or_default().trim();
        if !is_identifier(g) {
            return Err(ApiError::parse(format!(
                "invalid groupBy `{g}` (relation paths are not emulated)"
            )));
        }
        group_by.push(g.to_owned());
    }
    let having = match &q["havingClause"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => {
            return Err(ApiError::invalid_where(format!(
                "having: expected a string, got {}",
                kind_of(other)
            )));
        }
    };
    let distinct = truthy(&q["distinct"]);
    let aggregated = columns
        .iter()
        .any(|(c, _)| matches!(c, Column::Aggregate(..)));
    let grouped = aggregated || !group_by.is_empty() || (distinct && !columns.is_empty());
    if !having.trim().is_empty() && !grouped {
        return Err(ApiError::invalid_where(
            "having needs groupBy or an aggregate in props",
        ));
    }
    let (selection, props) = if grouped {
        if columns.is_empty() || all_props {
            for g in &group_by {
                if !columns.iter().any(|(_, n)| n == g) {
                    columns.push((Column::Prop(g.clone()), g.clone()));
                }
            }
        }
        let having = compile_having(&having, |func, prop| {
            columns.iter().find_map(|(c, name)| match c {
                Column::Aggregate(f, Some(p)) if f.default_name() == func && p == prop => {
                    Some(name.clone())
                }
                _ => None,
            })
        })?;
        let selection = Selection {
            columns,
            group_by,
            having,
            distinct,
        };
        (Some(selection), Vec::new())
    } else if all_props {
        (None, Vec::new())
    } else {
        let props = columns
            .into_iter()
            .map(|(c, name)| match c {
                Column::Prop(p) if p == name => Ok(p),
                _ => Err(ApiError::parse(format!(
                    "an alias (`{name}`) needs an aggregate or groupBy"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        (None, props)
    };
    Ok(ParsedQuery {
        find: FindQuery {
            condition: compile(&clause)?,
            sort,
            page_size: page_size as u32,
            offset: offset as u64,
            selection,
        },
        props,
        relations: RelationLoad::parse(q)?,
    })
}

/// Keeps `props` (and `___class`, `objectId`) of each row; all when empty.
pub(super) fn project(mut rows: Vec<Object>, props: &[String]) -> Vec<Object> {
    if !props.is_empty() {
        for row in &mut rows {
            row.retain(|k, _| k == "___class" || k == "objectId" || props.contains(k));
        }
    }
    rows
}

/// Rows as the JSON array a route answers.
pub(super) fn rows_value(rows: Vec<Object>) -> Value {
    Value::Array(rows.into_iter().map(Value::Object).collect())
}

fn query_from_uri(uri: &Uri) -> Map<String, Value> {
    query_map(uri)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}
