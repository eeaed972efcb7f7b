//! A plugin's `call-result` in MCP terms: content blocks checked (URIs,
//! MIME types, base64), structured content parsed and checked against the
//! tool's output schema.

use base64::Engine as _;
use serde_json::{json, Value};

use super::bindings::tool as tb;
use super::spec::CheckedTool;
use crate::call::ToolOutput;

use tb::logai::plugin::types as wt;

/// Turn a plugin's `call-result` into MCP terms, checking it.
pub(super) fn convert(tool: &CheckedTool, r: wt::CallResult) -> Result<ToolOutput, String> {
    let mut content = Vec::with_capacity(r.content.len());
    for (i, block) in r.content.into_iter().enumerate() {
        content.push(match block {
            wt::ContentBlock::Text(text) => json!({"type": "text", "text": text}),
            wt::ContentBlock::Image(b) => json!({"type": "image", "data": blob(i, &b, "image/")?, "mimeType": b.mime_type}),
            wt::ContentBlock::Audio(b) => json!({"type": "audio", "data": blob(i, &b, "audio/")?, "mimeType": b.mime_type}),
            wt::ContentBlock::Link(l) => {
                if l.uri.is_empty() || !l.uri.contains(':') {
                    return Err(format!("content block {i}: resource link uri {:?} is not a URI", l.uri));
                }
                if l.name.is_empty() {
                    return Err(format!("content block {i}: resource link has no name"));
                }
                let mut v = json!({"type": "resource_link", "uri": l.uri, "name": l.name});
                if let Some(d) = l.description {
                    v["description"] = json!(d);
                }
                if let Some(m) = l.mime_type {
                    v["mimeType"] = json!(m);
                }
                v
            }
            wt::ContentBlock::Resource(r) => {
                if r.uri.is_empty() || !r.uri.contains(':') {
                    return Err(format!("content block {i}: embedded resource uri {:?} is not a URI", r.uri));
                }
                let mut res = json!({"uri": r.uri});
                if let Some(m) = r.mime_type {
                    res["mimeType"] = json!(m);
                }
                match (r.text, r.blob_base64) {
                    (Some(text), None) => res["text"] = json!(text),
                    (None, Some(blob)) => {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD
                            .decode(blob.as_bytes())
                            .map_err(|e| format!("content block {i}: embedded resource blob is not base64 ({e})"))?;
                        res["blob"] = json!(blob)
                    }
                    _ => return Err(format!("content block {i}: an embedded resource needs exactly one of text and blob")),
                }
                json!({"type": "resource", "resource": res})
            }
        });
    }
    let structured_content = match r.structured_content {
        None => None,
        Some(text) => {
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("structured content is not valid JSON ({e})"))?;
            if !v.is_object() {
                return Err("structured content is not a JSON object".into());
            }
            Some(v)
        }
    };
    if !r.is_error {
        if let Some(validator) = &tool.output {
            match &structured_content {
                None => return Err("the tool declares an output schema but returned no structured content".into()),
                Some(v) => {
                    if let Some(err) = validator.iter_errors(v).next() {
                        let at = err.instance_path().to_string();
                        let at = if at.is_empty() { "$".to_string() } else { format!("$ {at}") };
                        return Err(format!("structured content does not match the output schema at {at}: {err}"));
                    }
                }
            }
        }
    }
    Ok(ToolOutput { content, structured_content, is_error: r.is_error, ..Default::default() })
}

pub(super) fn blob(i: usize, b: &wt::Blob, prefix: &str) -> Result<String, String> {
    if !b.mime_type.starts_with(prefix) {
        return Err(format!("content block {i}: mime type {:?} is not {prefix}*", b.mime_type));
    }
    base64::engine::general_purpose::STANDARD
        .decode(b.data_base64.as_bytes())
        .map_err(|e| format!("content block {i}: data is not valid base64 ({e})"))?;
    Ok(b.data_base64.clone())
}
