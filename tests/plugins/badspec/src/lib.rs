//! Declares a tool whose input schema is not JSON: the host refuses to load it.
use logai_plugin_sdk::{export_plugin, CallResult, Context, Plugin, ToolError, ToolSpec};

pub struct BadSpec;
impl Plugin for BadSpec {
    fn tools() -> Vec<ToolSpec> {
        let mut spec = ToolSpec::new("broken", "Its schema is broken.", serde_json::json!({}));
        spec.input_schema = "{\"type\": \"object\", ".into();
        vec![spec]
    }
    fn call(name: &str, _ctx: &Context) -> Result<CallResult, ToolError> {
        Err(ToolError::UnknownTool(name.into()))
    }
}

export_plugin!(BadSpec);
