//! Result shaping: a tool's answer as an MCP `CallToolResult` (checked
//! against the tool's output schema), or the JSON-RPC error it maps to.

use serde_json::{json, Map, Value};

use super::jsonrpc::{truncate, RpcError, INTERNAL_ERROR, INVALID_PARAMS};
use super::schema::{first_violation, plugin_path_to_params, type_name, CatalogEntry};
use crate::call::{ToolCallError, ToolOutput};

/// A tool's answer as an MCP `CallToolResult`, or the JSON-RPC error it maps to.
pub(super) fn shape_result(entry: &CatalogEntry, r: Result<ToolOutput, ToolCallError>) -> Result<Map<String, Value>, RpcError> {
    let tool = &entry.desc.name;
    let plugin = &entry.desc.plugin;
    let out = match r {
        Ok(out) => out,
        Err(ToolCallError::UnknownTool(name)) => {
            return Err(RpcError::new(INVALID_PARAMS, format!("unknown tool '{}'", truncate(&name, 128)))
                .with_data(json!({"path": "$.params.name"})))
        }
        Err(ToolCallError::InvalidArguments { path, message }) => {
            let path = plugin_path_to_params(&path);
            return Err(RpcError::new(INVALID_PARAMS, format!("{path}: {message}"))
                .with_data(json!({"path": path, "reason": message, "tool": tool})));
        }
        Err(ToolCallError::Internal(message)) => {
            return Err(RpcError::new(INTERNAL_ERROR, message).with_data(json!({"tool": tool, "plugin": plugin})))
        }
    };
    let mut content = out.content;
    if let Some(sc) = &out.structured_content {
        if !sc.is_object() {
            return Err(RpcError::new(
                INTERNAL_ERROR,
                format!("plugin '{plugin}' returned structuredContent for tool '{tool}' that is {}, not a JSON object", type_name(sc)),
            )
            .with_data(json!({"tool": tool, "plugin": plugin})));
        }
        if !out.is_error {
            if let Some(Ok(validator)) = &entry.output {
                if let Some(v) = first_violation(validator, sc, "$.structuredContent") {
                    return Err(RpcError::new(
                        INTERNAL_ERROR,
                        format!(
                            "plugin '{plugin}' returned structuredContent for tool '{tool}' that does not match \
                             its outputSchema: {}: {}",
                            v.path, v.message
                        ),
                    )
                    .with_data(json!({"tool": tool, "plugin": plugin, "path": v.path})));
                }
            }
        }
        // Clients that predate structuredContent read the text blocks.
        let has_text = content.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("text"));
        if !has_text {
            content.push(json!({"type": "text", "text": sc.to_string()}));
        }
    } else if !out.is_error && matches!(entry.output, Some(Ok(_))) {
        return Err(RpcError::new(
            INTERNAL_ERROR,
            format!("plugin '{plugin}' declares an outputSchema for tool '{tool}' but returned no structuredContent"),
        )
        .with_data(json!({"tool": tool, "plugin": plugin})));
    }
    let mut r = Map::new();
    r.insert("content".into(), Value::Array(content));
    if let Some(sc) = out.structured_content {
        r.insert("structuredContent".into(), sc);
    }
    r.insert("isError".into(), json!(out.is_error));
    Ok(r)
}
