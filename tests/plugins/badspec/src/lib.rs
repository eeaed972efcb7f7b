//! Declares tools whose specs are broken in different ways, plus one good
//! one: the host refuses to load it, and `logai config check` reports every
//! broken tool (not only the first).
use logai_plugin_sdk::{export_plugin, json, CallResult, Context, Plugin, SearchLimits, ToolError, ToolSpec};

pub struct BadSpec;
impl Plugin for BadSpec {
    fn tools(_limits: &SearchLimits) -> Vec<ToolSpec> {
        let object = json!({"type": "object"});
        let mut broken = ToolSpec::new("broken", "Its schema is broken.", object.clone());
        broken.input_schema = "{\"type\": \"object\", ".into();
        let not_a_schema = ToolSpec::new(
            "not_a_schema",
            "Its schema uses a type that does not exist.",
            json!({"type": "object", "properties": {"n": {"type": "nonsense"}}}),
        );
        let bad_output = ToolSpec::new("bad_output", "Its output schema is not an object schema.", object.clone())
            .output_schema(json!({"type": "array"}));
        let fine = ToolSpec::new("fine", "Nothing wrong with this one.", object);
        vec![broken, not_a_schema, bad_output, fine]
    }
    fn call(name: &str, _ctx: &Context) -> Result<CallResult, ToolError> {
        Err(ToolError::UnknownTool(name.into()))
    }
}

export_plugin!(BadSpec);
