//! The registry described as the official CodeRunner's `model.json` (spec
//! §4.1): what `coderunner model` prints, what `ANALYSE_SERVER_CODE` answers
//! and what debug mode registers, so that a Backendless server routes the
//! registered events to this runner.
//!
//! Handlers are compiled in, so each handler's `provider` (a JS file path in
//! the official model) names the Rust function instead; the server only
//! echoes it back in tasks, and this runner routes by event id and target.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::Provider;
use crate::registry::Registry;

/// One handler of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelHandler {
    /// The event id.
    pub event_id: u32,
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
pub struct Definitions {
    /// Source files, as the official model lists them.
    pub files: Vec<String>,
    /// Service and model types by name.
    pub types: Map<String, Value>,
}

/// The whole `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
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
    pub fn of(registry: &Registry) -> Model {
        let handlers = registry
            .registered()
            // Timers are listed with their schedules, not as handlers.
            .filter(|r| r.event.provider != Provider::Timer)
            .map(|r| ModelHandler {
                event_id: r.event.id.0,
                target: r.target.clone(),
                is_async: (r.event.provider != Provider::Custom).then_some(r.is_async),
                provider: format!("rust:{}", r.handler_name),
            })
            .collect();
        let timers = registry
            .timers()
            .map(|(name, schedule)| {
                let provider = registry
                    .lookup(crate::event::timer::EXECUTE.0, name)
                    .map_or_else(String::new, |r| format!("rust:{}", r.handler_name));
                serde_json::json!({
                    "name": name,
                    "provider": provider,
                    "timerJson": schedule.timer_json(name).to_string(),
                })
            })
            .collect();
        Model {
            handlers,
            timers,
            services: Vec::new(),
            definitions: Definitions::default(),
            types: Map::new(),
            errors: Vec::new(),
        }
    }

    /// The model as JSON.
    pub fn to_json(&self) -> Value {
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
