//! Building tool specs.

use serde_json::Value;

use crate::{ToolAnnotations, ToolSpec};

impl ToolSpec {
    /// A tool named `name` (`[a-zA-Z0-9_-]{1,64}`, unique across every
    /// loaded plugin), described for the model that will call it, taking
    /// arguments that match `input_schema` (a JSON Schema of an object).
    pub fn new(name: impl Into<String>, description: impl Into<String>, input_schema: Value) -> Self {
        ToolSpec {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: input_schema.to_string(),
            output_schema: None,
            annotations: None,
        }
    }

    /// Replace the description (for one that depends on the limits).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Edit the input schema in place (a bound that depends on the
    /// operator's limits, a keyword the derive cannot express).
    pub fn edit_input_schema(mut self, edit: impl FnOnce(&mut Value)) -> Self {
        self.input_schema = edit_text(&self.input_schema, edit);
        self
    }

    /// Edit the output schema in place, when there is one.
    pub fn edit_output_schema(mut self, edit: impl FnOnce(&mut Value)) -> Self {
        self.output_schema = self.output_schema.as_deref().map(|s| edit_text(s, edit));
        self
    }

    /// A human-readable display name.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The JSON Schema of the tool's `structuredContent` (an object schema).
    /// The host checks every structured result against it.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema.to_string());
        self
    }

    /// Behaviour hints for the client.
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.annotations = Some(annotations);
        self
    }

    /// Shorthand for the common case: reads only, changes nothing, same
    /// answer for the same arguments, no outside world.
    pub fn read_only(self) -> Self {
        self.annotations(ToolAnnotations {
            read_only_hint: Some(true),
            destructive_hint: Some(false),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
        })
    }
}

fn edit_text(text: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    edit(&mut v);
    v.to_string()
}
