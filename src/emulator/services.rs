//! API services, as the Backendless server serves them (spec §1.5):
//! `POST services/{Service}/{method}` with the parameters as the body (one
//! parameter: its value; several: an object keyed by their names), and any
//! route a method declares (`GET /posts/{id}`: path parameters from the
//! path, parameters from the query string for GET and DELETE). The call
//! becomes a `RequestServiceInvocation` task for the runner whose model
//! declares the service, over its link (HTTP or Redis), with the caller's
//! context; the method's status, headers and cookies are applied to the
//! reply. `bl-execution-type: async` answers at once without waiting.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::Shared;
use super::auth::Requester;
use super::dispatch::{MethodDecl, ServiceCall, ServiceDecl};
use super::error::ApiError;
use crate::dispatch::{METHOD_NOT_FOUND, SERVICE_NOT_FOUND};

/// Matches a declared route path (`/posts/{id}`) against a request path;
/// the path parameters when it matches.
fn match_route(template: &str, path: &str) -> Option<Map<String, Value>> {
    let wanted: Vec<&str> = template.trim_matches('/').split('/').collect();
    let given: Vec<&str> = path.trim_matches('/').split('/').collect();
    if wanted.len() != given.len() {
        return None;
    }
    let mut params = Map::new();
    for (w, g) in wanted.iter().zip(&given) {
        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !g.is_empty() => {
                params.insert(name.to_owned(), Value::from(*g));
            }
            Some(_) => return None,
            None if w == g => {}
            None => return None,
        }
    }
    Some(params)
}

/// The method a request reaches: a declared route first, then
/// `POST /{method}`.
fn find_method<'a>(
    decl: &'a ServiceDecl,
    verb: &Method,
    path: &str,
) -> Option<(&'a MethodDecl, Map<String, Value>)> {
    let routed = decl.methods.iter().find_map(|m| {
        let (route_verb, template) = m.route.as_ref()?;
        if route_verb != verb.as_str() {
            return None;
        }
        match_route(template, path).map(|params| (m, params))
    });
    routed.or_else(|| {
        (verb == Method::POST)
            .then(|| {
                decl.methods
                    .iter()
                    .find(|m| m.name == path.trim_matches('/'))
            })
            .flatten()
            .map(|m| (m, Map::new()))
    })
}

/// A query string as an object of text values.
fn query_object(pairs: Vec<(String, String)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// A parameter from the query string, as its declared type: numbers and
/// booleans read from their text (left as text when they do not read).
fn from_query(text: &Value, ty: &str) -> Value {
    let Some(s) = text.as_str() else {
        return text.clone();
    };
    let read = match ty {
        "Number" => serde_json::from_str::<serde_json::Number>(s)
            .ok()
            .map(Value::Number),
        "Boolean" => s.parse::<bool>().ok().map(Value::Bool),
        "Object" | "Array" => serde_json::from_str(s).ok(),
        _ => None,
    };
    read.unwrap_or_else(|| text.clone())
}

/// The method's positional parameters from what the request carries.
fn positional(method: &MethodDecl, carried: Value) -> Result<Vec<Value>, ApiError> {
    match method.params.len() {
        0 => Ok(Vec::new()),
        1 => Ok(vec![carried]),
        _ => match carried {
            Value::Object(mut by_name) => Ok(method
                .params
                .iter()
                .map(|name| by_name.remove(name).unwrap_or(Value::Null))
                .collect()),
            Value::Null => Ok(vec![Value::Null; method.params.len()]),
            _ => Err(ApiError::new(
                8002,
                format!(
                    "Could not parse request with message: the parameters of {} must be an object with the keys {}",
                    method.name,
                    method.params.join(", ")
                ),
            )),
        },
    }
}

/// `{verb} services/{Service}/{path}`: calls a service method.
pub(crate) async fn call_service(
    State(st): State<Shared>,
    caller: Requester,
    verb: Method,
    Path((_, _, service, path)): Path<(String, String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some((decl, route)) = st.dispatcher.find_service(&service).await? else {
        return Err(ApiError::new(
            SERVICE_NOT_FOUND,
            format!("[{service}] service does not exist"),
        )
        .with_status(StatusCode::NOT_FOUND));
    };
    let Some((method, path_params)) = find_method(&decl, &verb, &path) else {
        return Err(ApiError::new(
            METHOD_NOT_FOUND,
            format!("[{path}] method does not exist in [{service}] service or is not a function"),
        )
        .with_status(StatusCode::NOT_FOUND));
    };
    let query_params = query_object(query);
    let carried = if verb == Method::GET || verb == Method::DELETE {
        let typed = |i: usize, name: &String| {
            let ty = method.types.get(i).map_or("String", String::as_str);
            query_params.get(name).map(|v| from_query(v, ty))
        };
        match method.params.as_slice() {
            [one] => typed(0, one).unwrap_or(Value::Null),
            many => Value::Object(
                many.iter()
                    .enumerate()
                    .filter_map(|(i, name)| typed(i, name).map(|v| (name.clone(), v)))
                    .collect(),
            ),
        }
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(ApiError::parse)?
    };
    let args = positional(method, carried)?;
    let asynchronous = headers
        .get("bl-execution-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("async"));
    let call = ServiceCall {
        method: method.name.clone(),
        args,
        asynchronous,
        path: format!("/{}", path.trim_start_matches('/')),
        query: query_params,
        path_params,
    };
    let reply = st
        .dispatcher
        .invoke_service(route, &caller, &decl, call)
        .await?;
    let Some(reply) = reply else {
        return Ok(axum::Json(json!({})).into_response());
    };
    if let Some(e) = reply.exception {
        let status = u16::try_from(e.http_status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        return Err(ApiError::new(e.code, e.exception_message).with_status(status));
    }
    let value = reply
        .arguments
        .map_or(Value::Null, crate::event::wire::Arguments::into_value);
    let status = reply
        .http_response_status_code
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(value)).into_response();
    let out = response.headers_mut();
    for (name, value) in &reply.http_response_headers {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(text),
        ) {
            (Ok(name), Ok(value)) => {
                out.insert(name, value);
            }
            _ => tracing::warn!(header = %name, "emulator.service_header_invalid"),
        }
    }
    for cookie in &reply.http_response_cookies {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::try_from) {
            out.append(axum::http::header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl() -> ServiceDecl {
        ServiceDecl {
            name: "Calc".into(),
            provider: None,
            methods: vec![
                MethodDecl {
                    name: "sum".into(),
                    params: vec!["a".into(), "b".into()],
                    types: vec!["Number".into(), "Number".into()],
                    route: Some(("POST".into(), "/sum".into())),
                },
                MethodDecl {
                    name: "get".into(),
                    params: vec!["id".into()],
                    types: vec!["String".into()],
                    route: Some(("GET".into(), "/items/{id}".into())),
                },
            ],
        }
    }

    #[test]
    fn requests_reach_methods_by_route_or_name() {
        let d = decl();
        let (m, params) = find_method(&d, &Method::GET, "items/42").unwrap();
        assert_eq!(
            (m.name.as_str(), params["id"].as_str()),
            ("get", Some("42"))
        );
        assert_eq!(find_method(&d, &Method::POST, "sum").unwrap().0.name, "sum");
        assert_eq!(find_method(&d, &Method::POST, "get").unwrap().0.name, "get");
        assert!(find_method(&d, &Method::GET, "sum").is_none());
        assert!(find_method(&d, &Method::GET, "items").is_none());
    }

    #[test]
    fn parameters_are_positional_by_name() {
        let d = decl();
        let args = positional(&d.methods[0], json!({"b": 3, "a": 2})).unwrap();
        assert_eq!(args, vec![json!(2), json!(3)]);
        let args = positional(&d.methods[0], json!({"a": 2})).unwrap();
        assert_eq!(args, vec![json!(2), Value::Null]);
        assert_eq!(positional(&d.methods[0], json!(5)).unwrap_err().code, 8002);
        assert_eq!(
            positional(&d.methods[1], json!({"x": 1})).unwrap(),
            vec![json!({"x": 1})]
        );
        let q = query_object(vec![("n".into(), "5".into()), ("s".into(), "hi".into())]);
        assert_eq!(from_query(&q["n"], "Number"), json!(5));
        assert_eq!(from_query(&q["n"], "String"), json!("5"));
        assert_eq!(from_query(&q["s"], "Number"), json!("hi"));
    }
}
