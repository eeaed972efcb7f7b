//! The `hello` tool compiled into the host: the same spec and the same
//! work as `examples/hello-plugin`'s `hello`, without WebAssembly. The
//! benchmarks compare a `tools/call` through a plugin against this.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use logai::call::{CallScope, ToolCallError, ToolDescriptor, ToolHost, ToolOutput};

/// A [`ToolHost`] offering one native tool, `hello`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HelloNative;

/// The greeting, as the plugin words it.
fn greeting(name: &str, shout: bool) -> String {
    let g = format!("Hello, {name}! Greetings from a WebAssembly component.");
    if shout {
        g.to_uppercase()
    } else {
        g
    }
}

impl ToolHost for HelloNative {
    fn tools(&self) -> Vec<ToolDescriptor> {
        vec![ToolDescriptor {
            name: "hello".into(),
            title: Some("Say hello".into()),
            description: "Greet someone by name. Returns one line of text.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Who to greet." },
                    "shout": { "type": "boolean", "description": "Greet in capitals.", "default": false }
                },
                "required": ["name"],
                "additionalProperties": false
            }),
            output_schema: None,
            annotations: Some(json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})),
            plugin: "native".into(),
        }]
    }

    fn call(&self, name: &str, arguments: Value, _scope: CallScope) -> BoxFuture<'static, Result<ToolOutput, ToolCallError>> {
        let result = if name != "hello" {
            Err(ToolCallError::UnknownTool(name.to_string()))
        } else {
            match arguments.get("name").and_then(Value::as_str) {
                None => Err(ToolCallError::InvalidArguments { path: "$.name".into(), message: "missing field `name`".into() }),
                Some(who) => {
                    let shout = arguments.get("shout").and_then(Value::as_bool).unwrap_or(false);
                    Ok(ToolOutput {
                        content: vec![json!({"type": "text", "text": greeting(who, shout)})],
                        structured_content: None,
                        is_error: false,
                        ..Default::default()
                    })
                }
            }
        };
        Box::pin(async move { result })
    }
}
