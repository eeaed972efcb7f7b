//! The tools the MCP conformance suite's server scenarios call
//! (`@modelcontextprotocol/conformance`, scenarios `tools-call-*`,
//! `json-schema-2020-12`), written with the logai plugin SDK. Built by
//! `scripts/build-plugins` into `plugins/dist/test-conformance-tools.wasm`
//! and served by `tests/python/test_conformance.py` through a stdio↔HTTP
//! bridge.
//!
//! Not here: `test_embedded_resource` (the WIT `content-block` has no
//! embedded resource, only a resource link), `test_tool_with_logging`
//! (logai does not offer the `logging` capability), `test_sampling` and
//! `test_elicitation` (tools cannot make requests to the client).
//! `test_multiple_content_types` returns text, an image and a resource
//! *link*; the scenario wants an embedded resource, so it is an expected
//! failure until the WIT grows one.

use logai_plugin_sdk::{
    export_tools, json, progress, Blob, CallResult, ContentBlock, Context, EmbeddedResource, RawTool, ToolError, ToolSpec,
};

/// A 1×1 red PNG.
const RED_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// 10 ms of silence: 8 kHz, mono, 8-bit PCM WAV.
const SILENCE_WAV: &str = "UklGRnQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YVAAAACAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgA==";

fn no_args() -> logai_plugin_sdk::Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

fn image() -> ContentBlock {
    ContentBlock::Image(Blob { data_base64: RED_PIXEL_PNG.into(), mime_type: "image/png".into() })
}

struct SimpleText;
impl RawTool for SimpleText {
    fn spec() -> ToolSpec {
        ToolSpec::new("test_simple_text", "Returns a simple text response (conformance: tools-call-simple-text).", no_args()).read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult::text("This is a simple text response for testing."))
    }
}

struct ImageContent;
impl RawTool for ImageContent {
    fn spec() -> ToolSpec {
        ToolSpec::new("test_image_content", "Returns a 1x1 red PNG (conformance: tools-call-image).", no_args()).read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult { content: vec![image()], structured_content: None, is_error: false })
    }
}

struct AudioContent;
impl RawTool for AudioContent {
    fn spec() -> ToolSpec {
        ToolSpec::new("test_audio_content", "Returns 10 ms of silence as WAV (conformance: tools-call-audio).", no_args()).read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        let audio = ContentBlock::Audio(Blob { data_base64: SILENCE_WAV.into(), mime_type: "audio/wav".into() });
        Ok(CallResult { content: vec![audio], structured_content: None, is_error: false })
    }
}

struct MultipleContentTypes;
impl RawTool for MultipleContentTypes {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "test_multiple_content_types",
            "Returns text, an image and an embedded resource (conformance: tools-call-mixed-content).",
            no_args(),
        )
        .read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        let resource = ContentBlock::Resource(EmbeddedResource {
            uri: "test://mixed-content-resource".into(),
            mime_type: Some("application/json".into()),
            text: Some(r#"{"test":"data","value":123}"#.into()),
            blob_base64: None,
        });
        Ok(CallResult::text("Multiple content types test:").with(image()).with(resource))
    }
}

struct EmbeddedResourceTool;
impl RawTool for EmbeddedResourceTool {
    fn spec() -> ToolSpec {
        ToolSpec::new("test_embedded_resource", "Returns an embedded text resource (conformance: tools-call-embedded-resource).", no_args())
            .read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        let resource = ContentBlock::Resource(EmbeddedResource {
            uri: "test://embedded-resource".into(),
            mime_type: Some("text/plain".into()),
            text: Some("This is an embedded resource content.".into()),
            blob_base64: None,
        });
        Ok(CallResult { content: vec![resource], structured_content: None, is_error: false })
    }
}

struct ErrorHandling;
impl RawTool for ErrorHandling {
    fn spec() -> ToolSpec {
        ToolSpec::new("test_error_handling", "Always fails with a tool error (conformance: tools-call-error).", no_args()).read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult::error("This tool intentionally returns an error for testing"))
    }
}

struct WithProgress;
impl RawTool for WithProgress {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100, 50 ms apart (conformance: tools-call-with-progress).",
            no_args(),
        )
        .read_only()
    }
    fn call(_: &Context) -> Result<CallResult, ToolError> {
        for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if i > 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            progress::report(p, Some(100.0), Some(&format!("step {}", i + 1)));
        }
        Ok(CallResult::text("Progress test completed"))
    }
}

struct JsonSchema202012;
impl RawTool for JsonSchema202012 {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" }
                },
                "additionalProperties": false
            }),
        )
        .read_only()
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult::text(format!("received {}", ctx.raw_args())))
    }
}

export_tools!(
    SimpleText,
    ImageContent,
    AudioContent,
    MultipleContentTypes,
    EmbeddedResourceTool,
    ErrorHandling,
    WithProgress,
    JsonSchema202012
);
