//! Misbehaves by returning results the host must refuse.
use logai_plugin_sdk::{export_tools, json, Blob, CallResult, ContentBlock, Context, RawTool, ToolError, ToolSpec};

fn no_args() -> serde_json::Value {
    json!({"type": "object", "properties": {}})
}

/// Structured content that is not JSON.
pub struct NotJson;
impl RawTool for NotJson {
    fn spec() -> ToolSpec {
        ToolSpec::new("not_json", "Returns structured content that is not JSON.", no_args())
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult { content: vec![ContentBlock::Text("x".into())], structured_content: Some("{not json".into()), is_error: false })
    }
}

/// Structured content that does not match the declared output schema.
pub struct WrongShape;
impl RawTool for WrongShape {
    fn spec() -> ToolSpec {
        ToolSpec::new("wrong_shape", "Returns structured content that breaks its output schema.", no_args()).output_schema(json!({
            "type": "object",
            "properties": {"count": {"type": "integer"}},
            "required": ["count"]
        }))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        CallResult::structured("count", &json!({"count": "three"}))
    }
}

/// An image block whose data is not base64.
pub struct BadImage;
impl RawTool for BadImage {
    fn spec() -> ToolSpec {
        ToolSpec::new("bad_image", "Returns an image that is not base64.", no_args())
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult::text("see image")
            .with(ContentBlock::Image(Blob { data_base64: "%%% not base64 %%%".into(), mime_type: "image/png".into() })))
    }
}

/// A good tool beside the bad ones, with a valid structured result.
pub struct Fine;
impl RawTool for Fine {
    fn spec() -> ToolSpec {
        ToolSpec::new("fine", "Returns a valid structured result.", no_args())
            .output_schema(json!({"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        CallResult::structured("count: 3", &json!({"count": 3}))
    }
}

export_tools!(NotJson, WrongShape, BadImage, Fine);
