//! Wire types of the runner protocol (spec §3): the task the backend sends
//! (`RequestMethodInvocation`), the reply (`InvocationResult`) and the values
//! inside them (`ExecutionResult`, `ExceptionWrapper`).
//!
//! `arguments` comes in two encodings: a plain JSON array, or (as the
//! Backendless task queue sends it) a JSON array of integers holding the UTF-8
//! bytes of that JSON array. [`Arguments`] remembers which one it was given so
//! the reply can use the same.

use std::fmt;

use super::EventId;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `___jsonclass` of a method-invocation task.
pub const TASK_CLASS: &str = "com.backendless.coderunner.commons.protocol.RequestMethodInvocation";
/// `___jsonclass` of an API service task.
pub const SERVICE_TASK_CLASS: &str =
    "com.backendless.coderunner.commons.protocol.RequestServiceInvocation";
/// `___jsonclass` of a reply.
pub const RESULT_CLASS: &str = "com.backendless.coderunner.commons.protocol.InvocationResult";
/// `___jsonclass` of an exception wrapper.
pub const EXCEPTION_CLASS: &str = "com.backendless.commons.exception.ExceptionWrapper";
/// `___jsonclass` of the `result` argument of after-events.
pub const EXECUTION_RESULT_CLASS: &str = "com.backendless.servercode.ExecutionResult";
/// The exact message of a reply to a task that ran out of time (spec §1.3).
pub const TIMEOUT_MESSAGE: &str = "Task execution is aborted due to timeout";

/// How `arguments` was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// A plain JSON array: `[context, arg1, ...]`.
    #[default]
    Json,
    /// A JSON array of byte values holding the UTF-8 JSON of that array.
    Bytes,
    /// A JSON array of byte values holding the UTF-8 JSON of one value that
    /// is not an array: a service reply's bare return value (spec §2.5).
    /// `values` holds that one value.
    Value,
}

/// The arguments of a task or reply: argument 0 is the RunnerContext.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Arguments {
    /// The encoding to use on the wire.
    pub encoding: Encoding,
    /// The decoded values, context first.
    pub values: Vec<Value>,
}

impl Arguments {
    /// Arguments to be sent in the given encoding.
    pub fn new(encoding: Encoding, values: Vec<Value>) -> Self {
        Self { encoding, values }
    }

    /// One bare value sent as the UTF-8 bytes of its JSON (a service
    /// reply's return value).
    pub fn bare(value: Value) -> Self {
        Self {
            encoding: Encoding::Value,
            values: vec![value],
        }
    }

    /// The JSON text these bytes held: the array of values, or the one bare
    /// value of [`Encoding::Value`].
    pub fn into_value(self) -> Value {
        match self.encoding {
            Encoding::Value => self.values.into_iter().next().unwrap_or(Value::Null),
            Encoding::Json | Encoding::Bytes => Value::Array(self.values),
        }
    }
}

impl Serialize for Arguments {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.encoding {
            Encoding::Json => self.values.serialize(serializer),
            Encoding::Value => {
                let value = self.values.first().unwrap_or(&Value::Null);
                let bytes = serde_json::to_vec(value).map_err(serde::ser::Error::custom)?;
                serializer.collect_seq(bytes)
            }
            Encoding::Bytes => {
                let bytes = serde_json::to_vec(&self.values).map_err(serde::ser::Error::custom)?;
                let mut seq = serializer.serialize_seq(Some(bytes.len()))?;
                for b in bytes {
                    seq.serialize_element(&b)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ArgumentsVisitor)
    }
}

struct ArgumentsVisitor;

impl<'de> Visitor<'de> for ArgumentsVisitor {
    type Value = Arguments;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array: [context, arg1, ...] or the UTF-8 bytes of that JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arguments, A::Error> {
        // The first element decides the encoding: a number starts a byte
        // array, anything else is the context of a plain array.
        let first: Option<Value> = seq.next_element()?;
        match first {
            None => Ok(Arguments::default()),
            Some(Value::Number(n)) => {
                let first = n
                    .as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .ok_or_else(|| {
                        de::Error::custom("byte-encoded arguments must be integers 0..=255")
                    })?;
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(256) + 1);
                bytes.push(first);
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                let mut root: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    de::Error::custom(format_args!("byte-encoded arguments are not JSON: {e}"))
                })?;
                // The Backendless wire format's references and dates
                // (spec §2.4) are resolved here, once, for every transport.
                if super::markers::may_have_markers(&bytes) {
                    super::markers::resolve(&mut root);
                }
                Ok(match root {
                    Value::Array(values) => Arguments {
                        encoding: Encoding::Bytes,
                        values,
                    },
                    // A service reply: the bytes of one bare value.
                    value => Arguments::bare(value),
                })
            }
            Some(first) => {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(2) + 1);
                values.push(first);
                while let Some(v) = seq.next_element()? {
                    values.push(v);
                }
                Ok(Arguments {
                    encoding: Encoding::Json,
                    values,
                })
            }
        }
    }
}

fn star() -> String {
    "*".to_owned()
}

/// Declares a task class of the runner protocol: the fields both classes
/// carry, as the backend's requests share them (the Java class, the id, the
/// application, the time limit, the creation time, the backend's address
/// and key, the provider), then the class's own fields.
macro_rules! task_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, default class $class:literal {
            $($own:tt)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// The Java class name of the task (the class's constant when
            /// absent).
            #[serde(rename = "___jsonclass", default = $class)]
            pub json_class: String,
            /// The task id; the reply's `requestId`.
            pub id: String,
            /// The application the task belongs to.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub application_id: Option<String>,
            /// Time allowed for the handler or method, in milliseconds
            /// (`< 0`: none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub timeout: Option<i64>,
            /// When the backend created the task (ms since the epoch).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub timestamp: Option<i64>,
            /// `url` and `apiKey` of the backend. Holds a key: never logged.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub init_app_data: Option<Value>,
            /// As the backend sends it: the provider's name of a method task,
            /// the service's file in the official runner (required there) of
            /// a service task. Echoed, not read.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub provider: Option<String>,
            $($own)*
        }
    };
}

fn task_class() -> String {
    TASK_CLASS.to_owned()
}

task_struct! {
    /// A `RequestMethodInvocation` task ([`TASK_CLASS`]): run the handler of
    /// `event_id` on `target`.
    pub struct Task, default class "task_class" {
        /// The event's catalog id.
        pub event_id: EventId,
        /// The table, channel, timer or custom event name; `*` when untargeted.
        #[serde(default = "star")]
        pub target: String,
        /// Asynchronous tasks are acknowledged at once and get no result.
        #[serde(default, rename = "async")]
        pub is_async: bool,
        /// `[context, arg1, ...]` in one of the two encodings.
        pub arguments: Arguments,
        /// Extra invocation data the backend may send; kept as received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub invocation_context_dto: Option<Value>,
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .field("target", &self.target)
            .field("is_async", &self.is_async)
            .field("timeout", &self.timeout)
            .field("encoding", &self.arguments.encoding)
            .field("arguments", &self.arguments.values.len())
            .finish_non_exhaustive()
    }
}

/// Why a request body is not a valid task.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// The JSON path of the offending field (`eventId`, `arguments[0]`), or
    /// empty when the body is not JSON at all.
    pub field: String,
    /// A message naming the field and the problem.
    pub message: String,
}

impl Task {
    /// Decodes a task from the raw request body, naming the offending field
    /// on error.
    pub fn from_slice(body: &[u8]) -> Result<Task, TaskError> {
        // Tracking the path allocates for every key: a body that decodes
        // goes without it, and only one that fails is decoded again with it.
        if let Ok(task) = serde_json::from_slice(body) {
            return Ok(task);
        }
        decode_tracked(body)
    }

    /// The field that names an application other than `app_id`, if any:
    /// `applicationId` when present, and the context's `appId`, which must
    /// be present (`arguments[0].appId`).
    pub fn other_app_field(&self, app_id: &str) -> Option<&'static str> {
        if self
            .application_id
            .as_deref()
            .is_some_and(|sent| sent != app_id)
        {
            return Some("applicationId");
        }
        let context_app = self
            .arguments
            .values
            .first()
            .and_then(|context| context.get("appId"))
            .and_then(Value::as_str);
        (context_app != Some(app_id)).then_some("arguments[0].appId")
    }
}

fn service_task_class() -> String {
    SERVICE_TASK_CLASS.to_owned()
}

task_struct! {
    /// A `RequestServiceInvocation` task ([`SERVICE_TASK_CLASS`]): call
    /// `method` of the API service `className` (spec §2.5). Its `arguments`
    /// are the method's positional parameters, always as the UTF-8 bytes of
    /// their JSON array (the Backendless wire format; a plain array of
    /// numbers could not be told from it), and its caller is in
    /// `invocationContextDto`.
    pub struct ServiceTask, default class "service_task_class" {
        /// The service, e.g. `services.Posts`; only the text after the last `.`
        /// names it.
        pub class_name: String,
        /// The method called.
        pub method: String,
        /// The positional parameters, as the bytes of their JSON array.
        #[serde(default)]
        pub arguments: Arguments,
        /// The caller and the HTTP request: `userId`, `userToken`, `userRoles`,
        /// `httpHeaders`, `httpPath`, `httpQueryParams`, `httpPathParams`,
        /// `configurationItems`, ... Holds a token: never logged.
        #[serde(default)]
        pub invocation_context_dto: Map<String, Value>,
        /// Unused by the official runner; kept as received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_id: Option<String>,
    }
}

impl fmt::Debug for ServiceTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTask")
            .field("id", &self.id)
            .field("class_name", &self.class_name)
            .field("method", &self.method)
            .field("timeout", &self.timeout)
            .field("arguments", &self.arguments.values.len())
            .finish_non_exhaustive()
    }
}

impl ServiceTask {
    /// The service's name: `className` after its last `.`.
    pub fn service_name(&self) -> &str {
        self.class_name
            .rsplit('.')
            .next()
            .unwrap_or(self.class_name.as_str())
    }

    /// The field that names an application other than `app_id`, if any.
    pub fn other_app_field(&self, app_id: &str) -> Option<&'static str> {
        self.application_id
            .as_deref()
            .is_some_and(|sent| sent != app_id)
            .then_some("applicationId")
    }
}

/// A task of either class a runner executes: an event handler's
/// (`RequestMethodInvocation`) or an API service's (`RequestServiceInvocation`).
#[derive(Debug, Clone)]
pub enum AnyTask {
    /// An event handler, timer or custom event.
    Method(Task),
    /// An API service method.
    Service(ServiceTask),
}

impl AnyTask {
    /// Decodes a task of either class from the raw body, naming the
    /// offending field on error. A method task is decoded in one parse; the
    /// class is read only when that fails.
    pub fn from_slice(body: &[u8]) -> Result<AnyTask, TaskError> {
        if let Ok(task) = serde_json::from_slice::<Task>(body) {
            return Ok(AnyTask::Method(task));
        }
        #[derive(Deserialize)]
        struct Class<'a> {
            #[serde(rename = "___jsonclass", borrow, default)]
            class: Option<std::borrow::Cow<'a, str>>,
        }
        let is_service = serde_json::from_slice::<Class<'_>>(body)
            .ok()
            .and_then(|c| c.class)
            .is_some_and(|c| c.ends_with("RequestServiceInvocation"));
        if is_service {
            decode_tracked::<ServiceTask>(body).map(AnyTask::Service)
        } else {
            Task::from_slice(body).map(AnyTask::Method)
        }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        match self {
            AnyTask::Method(t) => &t.id,
            AnyTask::Service(t) => &t.id,
        }
    }

    /// Whether the sender does not wait for the reply (services never are).
    pub fn is_async(&self) -> bool {
        match self {
            AnyTask::Method(t) => t.is_async,
            AnyTask::Service(_) => false,
        }
    }

    /// The field that names an application other than `app_id`, if any.
    pub fn other_app_field(&self, app_id: &str) -> Option<&'static str> {
        match self {
            AnyTask::Method(t) => t.other_app_field(app_id),
            AnyTask::Service(t) => t.other_app_field(app_id),
        }
    }
}

/// Decodes `T` with the path of a failure in the error.
fn decode_tracked<T: de::DeserializeOwned>(body: &[u8]) -> Result<T, TaskError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let task: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = if field.is_empty() || field == "." {
            format!("invalid task: {inner}")
        } else {
            format!("invalid task field `{field}`: {inner}")
        };
        TaskError {
            field: if field == "." { String::new() } else { field },
            message,
        }
    })?;
    de.end().map_err(|e| TaskError {
        field: String::new(),
        message: format!("invalid task: {e}"),
    })?;
    Ok(task)
}

/// A failure reported to the backend (`ExceptionWrapper`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionWrapper {
    /// Always [`EXCEPTION_CLASS`].
    #[serde(rename = "___jsonclass", default = "exception_class")]
    pub json_class: String,
    /// The Backendless error code; 0 when the handler gave none.
    #[serde(default)]
    pub code: i64,
    /// The HTTP status for the client; -1 lets the server decide.
    #[serde(default = "minus_one")]
    pub http_status_code: i32,
    /// The Java class name of the error.
    #[serde(default = "java_exception")]
    pub exception_class: String,
    /// The message the client sees.
    #[serde(default)]
    pub exception_message: String,
}

fn exception_class() -> String {
    EXCEPTION_CLASS.to_owned()
}
fn minus_one() -> i32 {
    -1
}
fn java_exception() -> String {
    "java.lang.Exception".to_owned()
}

impl ExceptionWrapper {
    /// An exception with a code, a message and an optional HTTP status.
    pub fn new(code: i64, message: impl Into<String>, http_status: Option<u16>) -> Self {
        Self {
            json_class: exception_class(),
            code,
            http_status_code: http_status.map_or(-1, i32::from),
            exception_class: java_exception(),
            exception_message: message.into(),
        }
    }
}

/// The value of an after-event's `result` argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// Always [`EXECUTION_RESULT_CLASS`].
    #[serde(rename = "___jsonclass", default = "execution_result_class")]
    pub json_class: String,
    /// What the built-in logic returned.
    #[serde(default)]
    pub result: Value,
    /// What the built-in logic failed with, if it did.
    #[serde(default)]
    pub exception: Option<ExceptionWrapper>,
}

fn execution_result_class() -> String {
    EXECUTION_RESULT_CLASS.to_owned()
}

impl ExecutionResult {
    /// A successful result.
    pub fn ok(result: Value) -> Self {
        Self {
            json_class: execution_result_class(),
            result,
            exception: None,
        }
    }
}

/// Cookies arrive as an array (the official runner) or, from older peers, an
/// object whose values are the cookies.
fn cookies<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Value>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Array(items)) => items,
        Some(Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    })
}

/// A single JSON value sent as the UTF-8 bytes of its JSON text, as the
/// reply of a service invocation or of `ANALYSE_SERVER_CODE` carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct ByteEncoded(pub Value);

impl Serialize for ByteEncoded {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = serde_json::to_vec(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.collect_seq(bytes)
    }
}

impl<'de> Deserialize<'de> for ByteEncoded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(deserializer)?;
        serde_json::from_slice(&bytes)
            .map(ByteEncoded)
            .map_err(de::Error::custom)
    }
}

fn result_class() -> String {
    RESULT_CLASS.to_owned()
}

/// The reply to a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationResult {
    /// Always [`RESULT_CLASS`].
    #[serde(rename = "___jsonclass", default = "result_class")]
    pub json_class: String,
    /// The task's `id`.
    pub request_id: String,
    /// The HTTP status a handler chose for the client's response; absent
    /// unless one was chosen (as the official runner sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_response_status_code: Option<u16>,
    /// Headers a handler added to the client's response.
    #[serde(default)]
    pub http_response_headers: Map<String, Value>,
    /// Cookies a handler set on the client's response (`Set-Cookie` values).
    #[serde(default, deserialize_with = "cookies")]
    pub http_response_cookies: Vec<Value>,
    /// All arguments with the handler's values, context first; absent on error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// The failure, when the handler rejected the call or failed.
    #[serde(default)]
    pub exception: Option<ExceptionWrapper>,
}

impl InvocationResult {
    /// A reply carrying arguments.
    pub fn with_arguments(request_id: impl Into<String>, arguments: Arguments) -> Self {
        Self {
            json_class: result_class(),
            request_id: request_id.into(),
            http_response_status_code: None,
            http_response_headers: Map::new(),
            http_response_cookies: Vec::new(),
            arguments: Some(arguments),
            exception: None,
        }
    }

    /// A reply carrying an exception (and no arguments).
    pub fn with_exception(request_id: impl Into<String>, exception: ExceptionWrapper) -> Self {
        Self {
            json_class: result_class(),
            request_id: request_id.into(),
            http_response_status_code: None,
            http_response_headers: Map::new(),
            http_response_cookies: Vec::new(),
            arguments: None,
            exception: Some(exception),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task_json(arguments: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "t1", "eventId": 101, "target": "Post", "timeout": 5000, "arguments": arguments
        }))
        .unwrap()
    }

    #[test]
    fn decodes_both_encodings_to_the_same_values() {
        let values = json!([{"appId": "A"}, {"title": "héllo", "___class": "Post"}]);
        let plain = Task::from_slice(&task_json(values.clone())).unwrap();
        assert_eq!(plain.arguments.encoding, Encoding::Json);
        let bytes: Vec<Value> = serde_json::to_vec(&values)
            .unwrap()
            .into_iter()
            .map(Value::from)
            .collect();
        let encoded = Task::from_slice(&task_json(Value::Array(bytes))).unwrap();
        assert_eq!(encoded.arguments.encoding, Encoding::Bytes);
        assert_eq!(plain.arguments.values, encoded.arguments.values);
        assert_eq!(Value::Array(plain.arguments.values), values);
    }

    #[test]
    fn serializes_in_the_encoding_received() {
        let args = Arguments::new(Encoding::Bytes, vec![json!({"a": 1})]);
        let wire = serde_json::to_value(&args).unwrap();
        let bytes: Vec<u8> = serde_json::from_value(wire).unwrap();
        assert_eq!(bytes, br#"[{"a":1}]"#);
        let back: Arguments = serde_json::from_slice(&serde_json::to_vec(&args).unwrap()).unwrap();
        assert_eq!(back, args);
    }

    #[test]
    fn errors_name_the_field() {
        let err = Task::from_slice(br#"{"id":"x","arguments":[]}"#).unwrap_err();
        assert!(err.message.contains("eventId"), "{}", err.message);
        let err = Task::from_slice(br#"{"id":"x","eventId":"nope","arguments":[]}"#).unwrap_err();
        assert_eq!(err.field, "eventId");
        let err = Task::from_slice(br#"{"id":"x","eventId":1,"arguments":[300]}"#).unwrap_err();
        assert!(err.field.starts_with("arguments"), "{}", err.field);
        let err = Task::from_slice(b"not json").unwrap_err();
        assert!(err.message.starts_with("invalid task"));
    }

    #[test]
    fn exception_defaults() {
        let e: ExceptionWrapper = serde_json::from_value(json!({"exceptionMessage": "x"})).unwrap();
        assert_eq!((e.code, e.http_status_code), (0, -1));
        assert_eq!(
            ExceptionWrapper::new(7, "m", Some(403)).http_status_code,
            403
        );
    }

    proptest::proptest! {
        #[test]
        fn any_body_decodes_or_errors_without_panicking(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Task::from_slice(&body);
        }

        #[test]
        fn byte_encoding_round_trips(words in proptest::collection::vec("[a-zA-Z0-9 é\"\\\\]{0,12}", 0..8)) {
            let values: Vec<Value> = std::iter::once(json!({"appId": "A"})).chain(words.into_iter().map(Value::from)).collect();
            let args = Arguments::new(Encoding::Bytes, values.clone());
            let decoded: Arguments = serde_json::from_slice(&serde_json::to_vec(&args).unwrap()).unwrap();
            proptest::prop_assert_eq!(decoded.encoding, Encoding::Bytes);
            proptest::prop_assert_eq!(decoded.values, values);
        }
    }
}
