//! The registry described as the official CodeRunner's `model.json` (spec
//! §4.1): what `coderunner model` prints, what `ANALYSE_SERVER_CODE` answers
//! and what debug mode registers, so that a Backendless server routes the
//! registered events to this runner.
//!
//! Handlers are compiled in, so each handler's `provider` (a JS file path in
//! the official model) names the Rust function instead; the server only
//! echoes it back in tasks, and this runner routes by event id and target.

use crate::event::EventId;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::Provider;
use crate::registry::Registry;
use crate::service::{ParamType, RegisteredService, ServiceMethod};

/// The `metaInfo` of a method, as the official runner writes it with no tags.
fn meta_info() -> Value {
    serde_json::json!({"args": {}, "sampleResult": null, "sampleResultLoader": null})
}

/// `definitions.types[<Service>]`: the service's methods with their
/// parameter and return types, which the official runner reads back.
fn service_definition(service: &RegisteredService) -> Value {
    let methods: Map<String, Value> = service
        .methods
        .iter()
        .map(|m| {
            let decl = &m.decl;
            let params: Vec<Value> = decl
                .params()
                .iter()
                .map(|p| {
                    serde_json::json!({"name": p.name, "label": p.name,
                                       "type": p.ty.definition(), "optional": p.optional})
                })
                .collect();
            let mut tags = Map::new();
            if let Some((verb, path)) = decl.http_route() {
                tags.insert("route".to_owned(), Value::from(format!("{verb} {path}")));
            }
            // JSDoc tag names, lower-cased, with their text (as the official model).
            if let Some(timeout) = decl.execution_timeout() {
                tags.insert(
                    "executiontimeoutinseconds".to_owned(),
                    Value::from(timeout.as_secs().to_string()),
                );
            }
            let mut def =
                serde_json::json!({"params": params, "tags": tags, "metaInfo": meta_info()});
            if *decl.return_type() != ParamType::Void {
                def["returnType"] = decl.return_type().definition();
            }
            def["access"] = Value::from("public");
            if !decl.description_text().is_empty() {
                def["description"] = Value::from(decl.description_text());
            }
            (decl.name().to_owned(), def)
        })
        .collect();
    serde_json::json!({"name": service.name(), "methods": methods, "properties": {}})
}

/// Escapes an XML attribute value as the official runner's `xml` package does.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn attributes(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", xml_escape(v)))
        .collect()
}

/// `name`, `type`, `nativetype`, `fulltype`, `javatype` (and `elementType`)
/// of a typed XML node.
fn typed_attributes(name: &str, ty: &ParamType) -> Vec<(&'static str, String)> {
    let (native, java) = ty.native_and_java();
    let mut pairs = vec![
        ("name", name.to_owned()),
        ("type", ty.name().to_owned()),
        ("nativetype", native),
        ("fulltype", ty.name().to_owned()),
        ("javatype", java),
    ];
    if let ParamType::Array(Some(element)) = ty {
        pairs.push(("elementType", element.name().to_owned()));
    }
    pairs
}

fn method_xml(decl: &ServiceMethod) -> String {
    let mut pairs = typed_attributes(decl.name(), decl.return_type());
    pairs.extend([
        ("description", decl.description_text().to_owned()),
        ("operationName", decl.name().to_owned()),
        ("registerAs", String::new()),
        ("category", String::new()),
    ]);
    if let Some(timeout) = decl.execution_timeout() {
        pairs.push(("executionTimeoutInSeconds", timeout.as_secs().to_string()));
    }
    pairs.extend([
        ("appearanceIcon", String::new()),
        ("appearanceColor", String::new()),
        ("metaInfo", meta_info().to_string()),
    ]);
    if let Some((verb, path)) = decl.http_route() {
        pairs.push(("method", verb.to_owned()));
        pairs.push(("path", path.to_owned()));
    }
    let mut xml = format!("      <method{}>\n", attributes(&pairs));
    for p in decl.params() {
        let mut arg = typed_attributes(&p.name, &p.ty);
        arg.push(("required", (!p.optional).to_string()));
        xml.push_str(&format!("        <arg{}/>\n", attributes(&arg)));
    }
    xml.push_str("      </method>\n");
    xml
}

/// The `<namespaces>` document the server learns a service's methods,
/// routes and parameters from, laid out as the official runner's
/// `service-descriptor.js` writes it.
fn service_xml(service: &RegisteredService) -> String {
    let name = service.name();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<namespaces>\n");
    xml.push_str("  <namespace name=\"services\" fullname=\"services\">\n");
    let service_attrs = attributes(&[
        ("name", name.to_owned()),
        ("description", service.description.clone()),
        ("fullname", format!("services.{name}")),
        ("namespace", "services".to_owned()),
    ]);
    xml.push_str(&format!("    <service{service_attrs}>\n"));
    for method in &service.methods {
        xml.push_str(&method_xml(&method.decl));
    }
    xml.push_str("    </service>\n  </namespace>\n");
    xml.push_str("  <runtime generationMode=\"FULL\">\n  </runtime>\n</namespaces>");
    xml
}

/// One handler of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelHandler {
    /// The event id.
    pub event_id: EventId,
    /// The exact target (`*` for a generic handler).
    pub target: String,
    /// Absent for custom events, as the official model writes them.
    #[serde(rename = "async", skip_serializing_if = "Option::is_none")]
    pub is_async: Option<bool>,
    /// The Rust handler that runs (a JS file path in the official model).
    pub provider: String,
}

/// Type definitions and the files that hold them (none: Rust types are compiled in).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub(crate) struct Definitions {
    /// Source files, as the official model lists them.
    pub files: Vec<String>,
    /// Service and model types by name.
    pub types: Map<String, Value>,
}

/// The whole `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Model {
    /// Event handlers, sorted by event id and target.
    pub handlers: Vec<ModelHandler>,
    /// Timers.
    pub timers: Vec<Value>,
    /// API services.
    pub services: Vec<Value>,
    /// Type definitions.
    pub definitions: Definitions,
    /// Model types by name.
    pub types: Map<String, Value>,
    /// Problems found while building the model (none: registration refuses them at startup).
    pub errors: Vec<Value>,
}

impl Model {
    /// The model of everything `registry` holds.
    pub(crate) fn of(registry: &Registry) -> Model {
        let handlers = registry
            .registered()
            // Timers are listed with their schedules, not as handlers.
            .filter(|r| r.event.provider != Provider::Timer)
            .map(|r| ModelHandler {
                event_id: r.event.id,
                target: r.target.clone(),
                is_async: (r.event.provider != Provider::Custom).then_some(r.is_async),
                provider: format!("rust:{}", r.handler_name),
            })
            .collect();
        let timers = registry
            .timers()
            .map(|(name, schedule)| {
                let provider = registry
                    .lookup(crate::event::timer::EXECUTE, name)
                    .map_or_else(String::new, |r| format!("rust:{}", r.handler_name));
                serde_json::json!({
                    "name": name,
                    "provider": provider,
                    "timerJson": schedule.timer_json(name).to_string(),
                })
            })
            .collect();
        let mut definitions = Definitions::default();
        let services = registry
            .registered_services()
            .map(|service| {
                let provider = format!("rust:service:{}", service.name());
                definitions.files.push(provider.clone());
                definitions
                    .types
                    .insert(service.name().to_owned(), service_definition(service));
                let config: Vec<Value> = service
                    .shared
                    .config
                    .iter()
                    .enumerate()
                    .map(|(order, item)| item.to_model(order))
                    .collect();
                serde_json::json!({
                    "provider": provider,
                    "name": service.name(),
                    "version": service.version,
                    "description": service.description,
                    "serviceInfo": {},
                    "config": config,
                    "xml": service_xml(service),
                })
            })
            .collect();
        Model {
            handlers,
            timers,
            services,
            definitions,
            types: Map::new(),
            errors: Vec::new(),
        }
    }

    /// The model as JSON.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{custom, persistence};
    use crate::{After, Before, Context, HandlerError, Outcome};
    use serde_json::json;

    async fn before(_: Context, v: Value) -> Result<Before<Value>, HandlerError> {
        Ok(Before::Continue(v))
    }
    async fn after(_: Context, _: Value, _: Outcome<Value>) -> Result<After<Value>, HandlerError> {
        Ok(After::Keep)
    }

    #[test]
    fn handlers_are_listed_in_the_official_shape() {
        let mut registry = Registry::new();
        registry
            .before(persistence::BEFORE_CREATE, "Post", before)
            .unwrap()
            .after_async(persistence::AFTER_CREATE, "*", after)
            .unwrap()
            .after(custom::EXECUTE, "echo", after)
            .unwrap();
        let model = Model::of(&registry).to_json();
        let handlers = model["handlers"].as_array().unwrap();
        assert_eq!(handlers.len(), 3);
        assert_eq!(handlers[0]["eventId"], 100);
        assert_eq!(handlers[0]["target"], "Post");
        assert_eq!(handlers[0]["async"], false);
        assert!(handlers[0]["provider"].as_str().unwrap().contains("before"));
        assert_eq!(handlers[1]["eventId"], 101);
        assert_eq!(handlers[1]["async"], true);
        assert_eq!(handlers[2]["eventId"], 900);
        assert!(handlers[2].get("async").is_none(), "{}", handlers[2]);
        for key in ["services", "errors"] {
            assert_eq!(model[key], json!([]));
        }
        assert_eq!(model["definitions"], json!({"files": [], "types": {}}));
        assert_eq!(model["timers"], json!([]));
    }

    #[test]
    fn services_are_listed_with_the_official_xml_and_definitions() {
        use crate::service::{
            ConfigItem, ConfigType, ParamType, Service, ServiceContext, ServiceMethod,
        };
        async fn sum(_: ServiceContext, (a, b): (f64, f64)) -> Result<f64, HandlerError> {
            Ok(a + b)
        }
        let mut registry = Registry::new();
        registry
            .service(
                Service::new("CalcService")
                    .config(ConfigItem::new("flag", ConfigType::Bool).default_value(false))
                    .method(
                        ServiceMethod::new("sum")
                            .param("a", ParamType::Number)
                            .param("b", ParamType::Number)
                            .returns(ParamType::Number)
                            .route("POST /sum"),
                        sum,
                    ),
            )
            .unwrap();
        let model = Model::of(&registry).to_json();
        let service = &model["services"][0];
        assert_eq!(service["name"], "CalcService");
        assert_eq!(
            service["config"],
            json!([{"name": "flag", "type": "BOOL", "defaultValue": false, "order": 0}])
        );
        // The text the official runner 8.0.3 writes for this service
        // (tests/official/expected-model.json).
        let official = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<namespaces>\n  <namespace name=\"services\" fullname=\"services\">\n    <service name=\"CalcService\" description=\"CalcService\" fullname=\"services.CalcService\" namespace=\"services\">\n      <method name=\"sum\" type=\"Number\" nativetype=\"float\" fulltype=\"Number\" javatype=\"float\" description=\"\" operationName=\"sum\" registerAs=\"\" category=\"\" appearanceIcon=\"\" appearanceColor=\"\" metaInfo=\"{&quot;args&quot;:{},&quot;sampleResult&quot;:null,&quot;sampleResultLoader&quot;:null}\" method=\"POST\" path=\"/sum\">\n        <arg name=\"a\" type=\"Number\" nativetype=\"float\" fulltype=\"Number\" javatype=\"float\" required=\"true\"/>\n        <arg name=\"b\" type=\"Number\" nativetype=\"float\" fulltype=\"Number\" javatype=\"float\" required=\"true\"/>\n      </method>\n    </service>\n  </namespace>\n  <runtime generationMode=\"FULL\">\n  </runtime>\n</namespaces>";
        assert_eq!(service["xml"], official);
        let sum_def = &model["definitions"]["types"]["CalcService"]["methods"]["sum"];
        assert_eq!(
            sum_def,
            &json!({"params": [
                        {"name": "a", "label": "a", "type": {"name": "Number"}, "optional": false},
                        {"name": "b", "label": "b", "type": {"name": "Number"}, "optional": false}],
                    "tags": {"route": "POST /sum"},
                    "metaInfo": {"args": {}, "sampleResult": null, "sampleResultLoader": null},
                    "returnType": {"name": "Number"}, "access": "public"})
        );
    }

    #[test]
    fn methods_keep_their_order_and_every_type_maps_as_the_official_runner_maps_it() {
        use crate::service::{
            ConfigItem, ConfigType, ParamType, Service, ServiceContext, ServiceMethod,
        };
        async fn count(_: ServiceContext, (): ()) -> Result<Value, HandlerError> {
            Ok(json!({}))
        }
        async fn item(
            _: ServiceContext,
            _: (String, Vec<f64>, Option<bool>),
        ) -> Result<(), HandlerError> {
            Ok(())
        }
        let mut registry = Registry::new();
        registry
            .service(
                Service::new("Posts")
                    .config(ConfigItem::new("label", ConfigType::String).default_value("posts"))
                    .method(
                        ServiceMethod::new("myPostCount").returns(ParamType::Object),
                        count,
                    )
                    .method(
                        ServiceMethod::new("item")
                            .param("id", ParamType::String)
                            .param("xs", ParamType::Array(Some(Box::new(ParamType::Number))))
                            .optional_param("flag", ParamType::Boolean)
                            .route("GET /items/{id}")
                            .timeout_secs(7),
                        item,
                    ),
            )
            .unwrap();
        let model = Model::of(&registry).to_json();
        // What the official runner 8.0.3 builds for the same service in JS
        // (`@returns {Object}`; `@param {String} id`, `{Array.<Number>} xs`,
        // `{Boolean} [flag]`, `@route GET /items/{id}`,
        // `@executionTimeoutInSeconds 7`).
        let meta = "metaInfo=\"{&quot;args&quot;:{},&quot;sampleResult&quot;:null,&quot;sampleResultLoader&quot;:null}\"";
        let official = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<namespaces>\n  <namespace name=\"services\" fullname=\"services\">\n    <service name=\"Posts\" description=\"Posts\" fullname=\"services.Posts\" namespace=\"services\">\n      <method name=\"myPostCount\" type=\"Object\" nativetype=\"Object\" fulltype=\"Object\" javatype=\"java.lang.Object\" description=\"\" operationName=\"myPostCount\" registerAs=\"\" category=\"\" appearanceIcon=\"\" appearanceColor=\"\" {meta}>\n      </method>\n      <method name=\"item\" type=\"void\" nativetype=\"void\" fulltype=\"void\" javatype=\"void\" description=\"\" operationName=\"item\" registerAs=\"\" category=\"\" executionTimeoutInSeconds=\"7\" appearanceIcon=\"\" appearanceColor=\"\" {meta} method=\"GET\" path=\"/items/{{id}}\">\n        <arg name=\"id\" type=\"String\" nativetype=\"String\" fulltype=\"String\" javatype=\"java.lang.String\" required=\"true\"/>\n        <arg name=\"xs\" type=\"Array\" nativetype=\"List&lt;float&gt;\" fulltype=\"Array\" javatype=\"java.util.List&lt;float&gt;\" elementType=\"Number\" required=\"true\"/>\n        <arg name=\"flag\" type=\"Boolean\" nativetype=\"bool\" fulltype=\"Boolean\" javatype=\"boolean\" required=\"false\"/>\n      </method>\n    </service>\n  </namespace>\n  <runtime generationMode=\"FULL\">\n  </runtime>\n</namespaces>"
        );
        assert_eq!(model["services"][0]["xml"], official);
        assert_eq!(
            model["services"][0]["config"],
            json!([{"name": "label", "type": "STRING", "defaultValue": "posts", "order": 0}])
        );
        let methods = &model["definitions"]["types"]["Posts"]["methods"];
        let names: Vec<&String> = methods.as_object().unwrap().keys().collect();
        assert_eq!(names, ["myPostCount", "item"]);
        assert_eq!(
            methods["item"],
            json!({"params": [
                    {"name": "id", "label": "id", "type": {"name": "String"}, "optional": false},
                    {"name": "xs", "label": "xs", "type": {"name": "Array", "elementType": {"name": "Number"}}, "optional": false},
                    {"name": "flag", "label": "flag", "type": {"name": "Boolean"}, "optional": true}],
                   "tags": {"route": "GET /items/{id}", "executiontimeoutinseconds": "7"},
                   "metaInfo": {"args": {}, "sampleResult": null, "sampleResultLoader": null},
                   "access": "public"})
        );
    }

    #[test]
    fn timers_are_listed_with_their_schedule_as_timer_json() {
        use crate::timer::{Frequency, Schedule};
        async fn tick(_: Context) -> Result<(), HandlerError> {
            Ok(())
        }
        let mut registry = Registry::new();
        let schedule = Schedule::new(1_764_460_800_000, Frequency::Custom { every_secs: 60 });
        registry.timer("tick", schedule.clone(), tick).unwrap();
        let model = Model::of(&registry).to_json();
        assert_eq!(model["handlers"], json!([]), "a timer is not a handler");
        let timer = &model["timers"][0];
        assert_eq!(timer["name"], "tick");
        assert!(
            timer["provider"].as_str().unwrap().contains("tick"),
            "{timer}"
        );
        let json: Value = serde_json::from_str(timer["timerJson"].as_str().unwrap()).unwrap();
        assert_eq!(json, schedule.timer_json("tick"));
    }
}
