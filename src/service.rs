//! API services: a user's own REST methods (`POST {root}/services/<Service>/<method>`,
//! spec §1.5, transport spec §2.5), declared as a named [`Service`] with
//! methods that take typed parameters and return a typed value.
//!
//! A method is a plain `async fn` over a [`ServiceContext`] and its
//! parameters: none is `()`, one is that parameter's type, several are a
//! tuple in declaration order (as event handlers take their arguments). The
//! declaration names each parameter and its type, so that the model tells
//! the server about them (`coderunner model`) and a missing or mistyped
//! parameter is refused with a message naming it.
//!
//! ```
//! use coderunner::service::{ConfigItem, ConfigType, ParamType, Service, ServiceContext, ServiceMethod};
//! use coderunner::{HandlerError, Registry};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     #[serde(rename = "roundUp")]
//!     round_up: bool,
//! }
//!
//! async fn sum(ctx: ServiceContext, (a, b): (f64, f64)) -> Result<f64, HandlerError> {
//!     let config: Config = ctx.config()?;
//!     ctx.set_status(202);
//!     Ok(if config.round_up { (a + b).ceil() } else { a + b })
//! }
//!
//! let calc = Service::new("CalcService")
//!     .config(ConfigItem::new("roundUp", ConfigType::Bool).default_value(false))
//!     .method(
//!         ServiceMethod::new("sum")
//!             .param("a", ParamType::Number)
//!             .param("b", ParamType::Number)
//!             .returns(ParamType::Number)
//!             .route("POST /sum"),
//!         sum,
//!     );
//! let mut registry = Registry::new();
//! registry.service(calc).unwrap();
//! assert_eq!(registry.services().count(), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::event::SERVICE_INVOCATION;
use crate::handler::{Context, HandlerError};
use crate::registry::{ArgumentError, Call, Decision, Prepared, Registered};

/// The type of a service method's parameter or return value, as the
/// model describes it to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// A string.
    String,
    /// A number (integer or float).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A date (milliseconds since the epoch on the wire).
    Date,
    /// Any JSON object.
    Object,
    /// An array, of elements of the given type when known.
    Array(Option<Box<ParamType>>),
    /// No value (a return type only).
    Void,
}

impl ParamType {
    /// The JS type name of the official model (`Number`, `String`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ParamType::String => "String",
            ParamType::Number => "Number",
            ParamType::Boolean => "Boolean",
            ParamType::Date => "Date",
            ParamType::Object => "Object",
            ParamType::Array(_) => "Array",
            ParamType::Void => "void",
        }
    }

    /// `(nativetype, javatype)` of the service XML, as the official
    /// runner's descriptor maps them.
    pub(crate) fn native_and_java(&self) -> (String, String) {
        match self {
            ParamType::String => ("String".into(), "java.lang.String".into()),
            ParamType::Number => ("float".into(), "float".into()),
            ParamType::Boolean => ("bool".into(), "boolean".into()),
            ParamType::Date => ("DateTime".into(), "java.util.Date".into()),
            ParamType::Object => ("Object".into(), "java.lang.Object".into()),
            ParamType::Array(None) => ("List".into(), "java.util.List".into()),
            ParamType::Array(Some(element)) => {
                let (native, java) = element.native_and_java();
                (format!("List<{native}>"), format!("java.util.List<{java}>"))
            }
            ParamType::Void => ("void".into(), "void".into()),
        }
    }

    /// The `type` object of the model's definitions.
    pub(crate) fn definition(&self) -> Value {
        match self {
            ParamType::Array(Some(element)) => {
                serde_json::json!({"name": "Array", "elementType": element.definition()})
            }
            other => serde_json::json!({ "name": other.name() }),
        }
    }
}

/// One declared parameter of a service method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name: the key a client sends it under.
    pub name: String,
    /// Its type.
    pub ty: ParamType,
    /// Whether it may be left out (its Rust type is then an `Option`).
    pub optional: bool,
}

/// The declaration of one service method: its name, parameters, return
/// type and HTTP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMethod {
    name: String,
    params: Vec<Param>,
    returns: ParamType,
    /// `(verb, path)` from `route("POST /sum")`; `None`: the default route.
    route: Option<(String, String)>,
    description: String,
    /// `@executionTimeoutInSeconds`: the most the method may run.
    timeout_secs: Option<u32>,
}

impl ServiceMethod {
    /// A method with no parameters that returns nothing (until told).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            params: Vec::new(),
            returns: ParamType::Void,
            route: None,
            description: String::new(),
            timeout_secs: None,
        }
    }

    /// Adds a required parameter (in the order the method takes them).
    pub fn param(mut self, name: impl Into<String>, ty: ParamType) -> Self {
        self.params.push(Param {
            name: name.into(),
            ty,
            optional: false,
        });
        self
    }

    /// Adds a parameter a client may leave out.
    pub fn optional_param(mut self, name: impl Into<String>, ty: ParamType) -> Self {
        self.params.push(Param {
            name: name.into(),
            ty,
            optional: true,
        });
        self
    }

    /// Sets the return type.
    pub fn returns(mut self, ty: ParamType) -> Self {
        self.returns = ty;
        self
    }

    /// Sets the route, as the official runner's `@route` tag: `"POST /sum"`,
    /// `"GET /posts/{id}"` (the verb is one of GET, PUT, POST, DELETE; a path
    /// alone means GET).
    pub fn route(mut self, route: &str) -> Self {
        let (verb, path) = match route.trim().split_once(' ') {
            Some((verb, path)) => (verb.to_ascii_uppercase(), path.trim().to_owned()),
            None => ("GET".to_owned(), route.trim().to_owned()),
        };
        self.route = Some((verb, path));
        self
    }

    /// A description shown in the Backendless console.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// The most the method may run, as the official runner's
    /// `@executionTimeoutInSeconds` tag: the model tells the server, and the
    /// runner also stops the method then if the task allows it longer.
    pub fn timeout_secs(mut self, secs: u32) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// The method's own time limit, if it has one.
    pub fn execution_timeout(&self) -> Option<std::time::Duration> {
        self.timeout_secs
            .map(|s| std::time::Duration::from_secs(u64::from(s)))
    }

    /// The method's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The declared return type.
    pub fn return_type(&self) -> &ParamType {
        &self.returns
    }

    /// `(verb, path)` of the route, if one was given.
    pub fn http_route(&self) -> Option<(&str, &str)> {
        self.route.as_ref().map(|(v, p)| (v.as_str(), p.as_str()))
    }

    /// The description.
    pub fn description_text(&self) -> &str {
        &self.description
    }
}

/// The type of a service configuration item (set per app in the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// A line of text.
    String,
    /// `true` or `false` (sent as the strings `"true"`/`"false"`).
    Bool,
    /// A date (sent as milliseconds; the method sees a number of ms).
    Date,
    /// One of the item's options.
    Choice,
    /// A longer text.
    Text,
}

impl ConfigType {
    /// The model's upper-case name (`BOOL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::String => "STRING",
            ConfigType::Bool => "BOOL",
            ConfigType::Date => "DATE",
            ConfigType::Choice => "CHOICE",
            ConfigType::Text => "TEXT",
        }
    }
}

/// A configuration item of a service: its name, type and default value.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    name: String,
    ty: ConfigType,
    default: Value,
    display_name: Option<String>,
    required: bool,
    options: Vec<String>,
}

impl ConfigItem {
    /// An item with no default (`null`).
    pub fn new(name: impl Into<String>, ty: ConfigType) -> Self {
        Self {
            name: name.into(),
            ty,
            default: Value::Null,
            display_name: None,
            required: false,
            options: Vec::new(),
        }
    }

    /// The value a method sees when the app sets none.
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.default = value.into();
        self
    }

    /// The label shown in the console.
    pub fn display_name(mut self, text: impl Into<String>) -> Self {
        self.display_name = Some(text.into());
        self
    }

    /// Marks the item as one the app must set.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The options of a [`ConfigType::Choice`] item.
    pub fn options<I: IntoIterator<Item = S>, S: Into<String>>(mut self, options: I) -> Self {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }

    /// The item's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The item as the model's `config` lists it.
    pub(crate) fn to_model(&self, order: usize) -> Value {
        // The keys the official model writes for `{name, type, defaultValue}`;
        // the optional ones only when given, as the author's extra keys.
        let mut item = serde_json::json!({
            "name": self.name,
            "type": self.ty.as_str(),
            "defaultValue": self.default,
            "order": order,
        });
        if self.required {
            item["required"] = Value::Bool(true);
        }
        if let Some(label) = &self.display_name {
            item["displayName"] = Value::from(label.as_str());
        }
        if !self.options.is_empty() {
            item["options"] = Value::from(self.options.clone());
        }
        item
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a configuration item has an empty name".to_owned());
        }
        if self.ty == ConfigType::Choice && self.options.is_empty() {
            return Err(format!(
                "configuration item `{}` is a choice without options",
                self.name
            ));
        }
        // The default must be something the method can be given.
        if !self.default.is_null() && self.typed(self.default.clone()).is_none() {
            return Err(format!(
                "configuration item `{}`: the default {} is not a {}",
                self.name,
                self.default,
                self.ty.as_str()
            ));
        }
        Ok(())
    }

    /// The value as the method sees it: booleans and dates from the strings
    /// the server sends, text as text; `None` when it does not fit the type.
    fn typed(&self, value: Value) -> Option<Value> {
        match (self.ty, value) {
            (_, Value::Null) => Some(Value::Null),
            (ConfigType::Bool, Value::Bool(b)) => Some(Value::Bool(b)),
            (ConfigType::Bool, Value::String(s)) => match s.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            (ConfigType::Date, Value::Number(n)) => Some(Value::Number(n)),
            (ConfigType::Date, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
            (ConfigType::String | ConfigType::Text | ConfigType::Choice, Value::String(s)) => {
                Some(Value::String(s))
            }
            (
                ConfigType::String | ConfigType::Text | ConfigType::Choice,
                other @ Value::Number(_),
            )
            | (
                ConfigType::String | ConfigType::Text | ConfigType::Choice,
                other @ Value::Bool(_),
            ) => Some(Value::String(other.to_string())),
            _ => None,
        }
    }
}

/// Runs one method: decodes its parameters (synchronously, so that a bad
/// one is refused before anything runs) and returns the run.
/// Its third input is the `configurationItems` the server sent.
type MethodFn = dyn Fn(Call, Arc<ServiceShared>, Option<Value>) -> Result<Prepared, ArgumentError>
    + Send
    + Sync;

/// What every invocation of a service shares: its name and configuration.
pub(crate) struct ServiceShared {
    pub(crate) name: String,
    pub(crate) config: Vec<ConfigItem>,
}

/// A method with its function.
#[derive(Clone)]
pub(crate) struct RegisteredMethod {
    pub(crate) decl: ServiceMethod,
    call: Arc<MethodFn>,
    /// How the dispatcher labels the method's runs (spans, metrics,
    /// messages): event [`SERVICE_INVOCATION`], target `Service.method`.
    pub(crate) label: Registered,
}

/// The function of a method's label, never called: the service runs its
/// methods itself.
fn not_called(_: Call) -> Result<Prepared, ArgumentError> {
    Err(ArgumentError {
        field: "arguments".to_owned(),
        message: "a service method runs through its service".to_owned(),
    })
}

/// An API service: a name, configuration items and methods. Register it
/// with [`crate::Registry::service`].
#[derive(Clone)]
pub struct Service {
    name: String,
    version: String,
    description: Option<String>,
    config: Vec<ConfigItem>,
    /// In declaration order (the model lists them so).
    methods: Vec<RegisteredMethod>,
    /// Problems found while building, reported at registration.
    problems: Vec<String>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("version", &self.version)
            .field(
                "methods",
                &self
                    .methods
                    .iter()
                    .map(|m| m.decl.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service named `name` (the `<Service>` of its URL), version 1.0.0.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: "1.0.0".to_owned(),
            description: None,
            config: Vec::new(),
            methods: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Sets the version (`1.0.0` by default).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the description (the name by default).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Declares a configuration item; its value reaches every method
    /// through [`ServiceContext::config`].
    pub fn config(mut self, item: ConfigItem) -> Self {
        if self.config.iter().any(|c| c.name == item.name) {
            self.problems.push(format!(
                "configuration item `{}` is declared twice",
                item.name
            ));
        }
        self.config.push(item);
        self
    }

    /// Adds a method: `handler` takes the [`ServiceContext`] and the
    /// parameters (`()` for none, the value for one, a tuple for several,
    /// in declaration order) and returns the method's result.
    pub fn method<A, R, F, Fut>(mut self, decl: ServiceMethod, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(ServiceContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    {
        let handler_name = std::any::type_name::<F>();
        if self.methods.iter().any(|m| m.decl.name == decl.name) {
            self.problems
                .push(format!("method `{}` is declared twice", decl.name));
            return self;
        }
        let params = decl.params.clone();
        let call: Arc<MethodFn> = Arc::new(move |call: Call, shared: Arc<ServiceShared>, sent| {
            let args: A = decode_params(&params, call.args)?;
            let ctx = ServiceContext::new(call.ctx, &shared, sent.as_ref());
            let response = Arc::clone(&ctx.inner.response);
            let run = handler(ctx, args);
            Ok(Box::pin(async move {
                let value = serde_json::to_value(run.await?).map_err(|e| {
                    HandlerError::msg(format!("the service's result cannot be encoded: {e}"))
                })?;
                let response = std::mem::take(&mut *response.lock());
                Ok(Decision::Service(value, response))
            }) as Prepared)
        });
        let label = Registered {
            event: &SERVICE_INVOCATION,
            target: format!("{}.{}", self.name, decl.name),
            is_async: false,
            handler_name,
            call: Arc::new(not_called),
        };
        self.methods.push(RegisteredMethod { decl, call, label });
        self
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the service cannot be registered, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!(
                "the service name `{}` must be letters, digits or `_`",
                self.name
            ));
        }
        if let Some(problem) = self.problems.first() {
            return Err(problem.clone());
        }
        if self.methods.is_empty() {
            return Err("a service needs at least one method".to_owned());
        }
        for item in &self.config {
            item.check()?;
        }
        for method in &self.methods {
            let decl = &method.decl;
            if decl.name.is_empty() {
                return Err("a method has an empty name".to_owned());
            }
            if decl.timeout_secs == Some(0) {
                return Err(format!(
                    "method `{}`: the timeout must be at least 1 second",
                    decl.name
                ));
            }
            if let Some((verb, _)) = &decl.route {
                if !["GET", "PUT", "POST", "DELETE"].contains(&verb.as_str()) {
                    return Err(format!(
                        "Unsupported HTTP method [{verb}] for {} method",
                        decl.name
                    ));
                }
            }
            let mut names = std::collections::HashSet::new();
            for p in &decl.params {
                if p.ty == ParamType::Void {
                    return Err(format!(
                        "method `{}`: parameter `{}` cannot be void",
                        decl.name, p.name
                    ));
                }
                if !names.insert(p.name.as_str()) {
                    return Err(format!(
                        "method `{}`: parameter `{}` is declared twice",
                        decl.name, p.name
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn into_registered(self) -> RegisteredService {
        RegisteredService {
            shared: Arc::new(ServiceShared {
                name: self.name.clone(),
                config: self.config,
            }),
            version: self.version,
            description: self.description.unwrap_or(self.name),
            methods: self.methods,
        }
    }
}

/// A registered service.
#[derive(Clone)]
pub(crate) struct RegisteredService {
    pub(crate) shared: Arc<ServiceShared>,
    pub(crate) version: String,
    pub(crate) description: String,
    /// In declaration order.
    pub(crate) methods: Vec<RegisteredMethod>,
}

impl RegisteredService {
    /// The service's name.
    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    /// The method named `name`.
    pub(crate) fn method(&self, name: &str) -> Option<&RegisteredMethod> {
        self.methods.iter().find(|m| m.decl.name == name)
    }

    /// Decodes the parameters of `method` and returns its run.
    pub(crate) fn prepare(
        &self,
        method: &RegisteredMethod,
        call: Call,
        configuration_items: Option<Value>,
    ) -> Result<Prepared, ArgumentError> {
        (method.call)(call, Arc::clone(&self.shared), configuration_items)
    }
}

/// Decodes the positional parameters into `A` (the catalog's convention:
/// none `()`, one the value, several the array); the error names the
/// parameter.
fn decode_params<A: DeserializeOwned>(
    params: &[Param],
    args: Vec<Value>,
) -> Result<A, ArgumentError> {
    let name_of = |i: usize| {
        params
            .get(i)
            .map_or_else(|| format!("#{}", i + 1), |p| p.name.clone())
    };
    if args.len() > params.len() {
        return Err(ArgumentError {
            field: format!("arguments[{}]", params.len()),
            message: format!(
                "{} parameters were sent; the method takes {}",
                args.len(),
                params.len()
            ),
        });
    }
    let fail = |index: usize, inner: String, sent: Option<&Value>| {
        let name = name_of(index);
        let message = match sent {
            None | Some(Value::Null) => format!("parameter `{name}` is missing"),
            Some(_) => format!("parameter `{name}` is invalid: {inner}"),
        };
        ArgumentError {
            field: format!("arguments[{index}]"),
            message,
        }
    };
    match params.len() {
        0 => A::deserialize(Value::Null)
            .or_else(|_| A::deserialize(Value::Array(Vec::new())))
            .map_err(|e| ArgumentError {
                field: "arguments".to_owned(),
                message: format!("the method's parameters do not match its declaration: {e}"),
            }),
        1 => {
            let value = args.into_iter().next().unwrap_or(Value::Null);
            match A::deserialize(&value) {
                Ok(a) => Ok(a),
                Err(e) => {
                    let detail = serde_path_to_error::deserialize::<_, A>(&value)
                        .err()
                        .map_or_else(|| e.to_string(), |e| with_path(&e));
                    Err(fail(0, detail, Some(&value)))
                }
            }
        }
        n => {
            let mut values = args;
            values.resize(n, Value::Null);
            let array = Value::Array(values);
            match A::deserialize(&array) {
                Ok(a) => Ok(a),
                Err(e) => {
                    let tracked = serde_path_to_error::deserialize::<_, A>(&array).err();
                    let index = tracked.as_ref().and_then(|t| match t.path().iter().next() {
                        Some(serde_path_to_error::Segment::Seq { index }) => Some(*index),
                        _ => None,
                    });
                    match (index, tracked) {
                        (Some(i), Some(t)) => {
                            let detail = with_path(&t);
                            Err(fail(i, detail, array.get(i)))
                        }
                        _ => Err(ArgumentError {
                            field: "arguments".to_owned(),
                            message: format!(
                                "the method's parameters do not match its declaration: {e}"
                            ),
                        }),
                    }
                }
            }
        }
    }
}

/// An error's message with the path inside the parameter, when there is one.
fn with_path(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let mut segments = e.path().iter();
    // The first segment of a tuple is the parameter's index.
    let inner: Vec<String> = match segments.next() {
        Some(serde_path_to_error::Segment::Seq { .. }) => segments.map(|s| s.to_string()).collect(),
        _ => {
            if path == "." {
                Vec::new()
            } else {
                vec![path]
            }
        }
    };
    if inner.is_empty() {
        e.inner().to_string()
    } else {
        format!("at `{}`: {}", inner.join("."), e.inner())
    }
}

/// What a method set on the HTTP reply the client gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceResponse {
    pub(crate) status: Option<u16>,
    pub(crate) headers: Map<String, Value>,
    pub(crate) cookies: Vec<Value>,
}

/// Everything a service method knows about its invocation: the caller (and
/// the SDK clients acting as the caller, the superuser or the server key,
/// through [`Context`], which this dereferences to), the HTTP request, the
/// service's configuration; and what it sets on the HTTP reply.
#[derive(Clone)]
pub struct ServiceContext {
    inner: Arc<ServiceInner>,
}

struct ServiceInner {
    ctx: Context,
    service: String,
    config: Map<String, Value>,
    /// Shared with the run, which reads it once the method returns.
    response: Arc<Mutex<ServiceResponse>>,
}

impl fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service", &self.inner.service)
            .field("context", &self.inner.ctx)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for ServiceContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.inner.ctx
    }
}

/// The configuration values the server sent, typed by their declaration;
/// the declared default where none was sent.
fn config_values(declared: &[ConfigItem], sent: Option<&Value>) -> Map<String, Value> {
    let mut by_name: BTreeMap<&str, &Value> = BTreeMap::new();
    for item in sent.and_then(Value::as_array).into_iter().flatten() {
        if let (Some(name), Some(value)) = (item["name"].as_str(), item.get("value")) {
            by_name.insert(name, value);
        }
    }
    declared
        .iter()
        .map(|item| {
            let value = match by_name.get(item.name.as_str()) {
                Some(v) if !v.is_null() => (*v).clone(),
                _ => item.default.clone(),
            };
            // A value that does not fit its type is passed as sent; the
            // method's typed decode then names the item.
            let typed = item.typed(value.clone()).unwrap_or(value);
            (item.name.clone(), typed)
        })
        .collect()
}

impl ServiceContext {
    fn new(ctx: Context, shared: &ServiceShared, sent: Option<&Value>) -> Self {
        let config = config_values(&shared.config, sent);
        Self {
            inner: Arc::new(ServiceInner {
                ctx,
                service: shared.name.clone(),
                config,
                response: Arc::default(),
            }),
        }
    }

    /// The invocation's [`Context`]: the caller, the SDK clients, the deadline.
    pub fn context(&self) -> &Context {
        &self.inner.ctx
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    fn extra(&self, key: &str) -> Option<&Value> {
        self.inner.ctx.runner().extra.get(key)
    }

    fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        match self.extra(key) {
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The request's header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .ctx
            .runner()
            .http_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }

    /// The path of the request inside the service (`httpPath`).
    pub fn path(&self) -> Option<&str> {
        self.extra("httpPath").and_then(Value::as_str)
    }

    /// The route's path parameters (`{id}` of `GET /posts/{id}`).
    pub fn path_params(&self) -> BTreeMap<String, String> {
        self.string_map("httpPathParams")
    }

    /// The request's query parameters.
    pub fn query_params(&self) -> BTreeMap<String, String> {
        self.string_map("httpQueryParams")
    }

    /// The caller's locale, when the server sent one.
    pub fn user_locale(&self) -> Option<&str> {
        self.extra("userLocale").and_then(Value::as_str)
    }

    /// The configuration, typed: a serde type whose fields are the declared
    /// items (booleans as `bool`, dates as milliseconds, the others as
    /// text), each the app's value or else its declared default. A value
    /// that does not fit is an error naming the item.
    pub fn config<C: DeserializeOwned>(&self) -> Result<C, HandlerError> {
        let map = Value::Object(self.inner.config.clone());
        serde_path_to_error::deserialize(&map).map_err(|e| {
            HandlerError::msg(format!(
                "the configuration of service {} does not fit: item `{}`: {}",
                self.inner.service,
                e.path(),
                e.inner()
            ))
        })
    }

    /// One configuration item's value (typed as [`ServiceContext::config`] does).
    pub fn config_value(&self, name: &str) -> Option<&Value> {
        self.inner.config.get(name)
    }

    /// Sets the HTTP status of the reply the client gets.
    pub fn set_status(&self, status: u16) {
        self.inner.response.lock().status = Some(status);
    }

    /// Sets a header of the reply the client gets.
    pub fn set_header(&self, name: impl Into<String>, value: impl Into<String>) {
        self.inner
            .response
            .lock()
            .headers
            .insert(name.into(), Value::String(value.into()));
    }

    /// Adds a cookie to the reply the client gets: a `Set-Cookie` value
    /// such as `"theme=dark; Path=/; Max-Age=3600"`.
    pub fn add_cookie(&self, set_cookie: impl Into<String>) {
        self.inner
            .response
            .lock()
            .cookies
            .push(Value::String(set_cookie.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(names: &[(&str, ParamType)]) -> Vec<Param> {
        names
            .iter()
            .map(|(n, t)| Param {
                name: (*n).to_owned(),
                ty: t.clone(),
                optional: false,
            })
            .collect()
    }

    use serde::Deserialize;

    #[test]
    fn parameters_are_decoded_by_position_and_errors_name_them() {
        let two = params(&[("a", ParamType::Number), ("b", ParamType::Number)]);
        let (a, b): (f64, f64) = decode_params(&two, vec![2.into(), 3.into()]).unwrap();
        assert_eq!((a, b), (2.0, 3.0));
        let err = decode_params::<(f64, f64)>(&two, vec![2.into()]).unwrap_err();
        assert_eq!(err.field, "arguments[1]");
        assert_eq!(err.message, "parameter `b` is missing");
        let err = decode_params::<(f64, f64)>(&two, vec![2.into(), "x".into()]).unwrap_err();
        assert!(
            err.message.starts_with("parameter `b` is invalid"),
            "{}",
            err.message
        );
        let err =
            decode_params::<(f64, f64)>(&two, vec![1.into(), 2.into(), 3.into()]).unwrap_err();
        assert!(err.message.contains("3 parameters"), "{}", err.message);

        let one = params(&[("post", ParamType::Object)]);
        #[derive(Debug, Deserialize)]
        struct Post {
            #[expect(dead_code, reason = "only decoded")]
            title: String,
        }
        let err = decode_params::<Post>(&one, vec![serde_json::json!({"title": 5})]).unwrap_err();
        assert!(
            err.message
                .contains("parameter `post` is invalid: at `title`"),
            "{}",
            err.message
        );
        let (): () = decode_params(&[], Vec::new()).unwrap();
    }

    #[test]
    fn configuration_is_typed_with_defaults() {
        let declared = vec![
            ConfigItem::new("flag", ConfigType::Bool).default_value(false),
            ConfigItem::new("since", ConfigType::Date),
            ConfigItem::new("greeting", ConfigType::String).default_value("hi"),
        ];
        let sent = serde_json::json!([
            {"name": "flag", "value": "true"},
            {"name": "since", "value": "1764460800000"},
            {"name": "greeting", "value": null}
        ]);
        let values = config_values(&declared, Some(&sent));
        assert_eq!(values["flag"], true);
        assert_eq!(values["since"], 1_764_460_800_000_i64);
        assert_eq!(values["greeting"], "hi");
        let none = config_values(&declared, None);
        assert_eq!(none["flag"], false);
        assert_eq!(none["since"], Value::Null);
    }

    #[test]
    fn invalid_declarations_are_refused() {
        async fn m(_: ServiceContext, (): ()) -> Result<(), HandlerError> {
            Ok(())
        }
        let bad_route = Service::new("S").method(ServiceMethod::new("m").route("PATCH /x"), m);
        assert!(bad_route.check().unwrap_err().contains("PATCH"));
        let twice = Service::new("S")
            .method(ServiceMethod::new("m"), m)
            .method(ServiceMethod::new("m"), m);
        assert!(twice.check().unwrap_err().contains("twice"));
        let bad_default = Service::new("S")
            .config(ConfigItem::new("f", ConfigType::Bool).default_value("maybe"))
            .method(ServiceMethod::new("m"), m);
        assert!(bad_default.check().unwrap_err().contains("`f`"));
        assert!(Service::new("S").check().is_err(), "no method");
        assert!(
            Service::new("S")
                .method(ServiceMethod::new("m"), m)
                .check()
                .is_ok()
        );
    }
}
