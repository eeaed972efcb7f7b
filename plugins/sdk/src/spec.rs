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
