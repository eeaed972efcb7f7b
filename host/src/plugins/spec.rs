//! Tool specs as plugins declare them, checked: names, JSON Schemas
//! (parsed and compiled once), annotations.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::bindings::tool::logai::plugin::types as wt;
use crate::call::ToolDescriptor;
use crate::config::Config;

/// The operator's search limits, as plugins get them (`tools.list` and
/// every call's context): one number each in the manifest, no grants to
/// keep in sync.
pub(crate) fn search_limits(config: &Config) -> wt::SearchLimits {
    wt::SearchLimits {
        default_max_results: config.limits.default_max_results,
        max_results_cap: config.limits.max_results_cap,
        max_context_lines: config.limits.max_context_lines,
    }
}

/// What a tool list was made for, recorded with it in the cache: a list
/// made for other limits is listed again.
pub(crate) fn list_key(l: &wt::SearchLimits) -> String {
    format!("limits {}/{}/{}", l.default_max_results, l.max_results_cap, l.max_context_lines)
}

/// A plugin's `tool-spec`, as stored in the cache's tool list.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct RawToolSpec {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: String,
    pub output_schema: Option<String>,
    pub annotations: Option<RawAnnotations>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct RawAnnotations {
    pub read_only_hint: Option<bool>,
    pub destructive_hint: Option<bool>,
    pub idempotent_hint: Option<bool>,
    pub open_world_hint: Option<bool>,
}

impl From<wt::ToolSpec> for RawToolSpec {
    fn from(s: wt::ToolSpec) -> Self {
        RawToolSpec {
            name: s.name,
            title: s.title,
            description: s.description,
            input_schema: s.input_schema,
            output_schema: s.output_schema,
            annotations: s.annotations.map(|a| RawAnnotations {
                read_only_hint: a.read_only_hint,
                destructive_hint: a.destructive_hint,
                idempotent_hint: a.idempotent_hint,
                open_world_hint: a.open_world_hint,
            }),
        }
    }
}

/// A checked tool: what clients see, and the compiled output schema the
/// host checks structured results against.
#[derive(Debug)]
pub(crate) struct CheckedTool {
    pub descriptor: ToolDescriptor,
    pub output: Option<jsonschema::Validator>,
}

/// Valid tool names: `[a-zA-Z0-9_-]{1,64}`.
pub(crate) fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Check one spec of plugin `plugin`; the error says what is wrong (the
/// caller names the plugin).
pub(crate) fn check(plugin: &str, raw: &RawToolSpec) -> Result<CheckedTool, String> {
    if !valid_tool_name(&raw.name) {
        return Err(format!("tool name {:?} is invalid (1 to 64 of [a-zA-Z0-9_-])", raw.name));
    }
    let tool = &raw.name;
    if raw.description.trim().is_empty() {
        return Err(format!("tool '{tool}' has an empty description"));
    }
    // Both schemas are checked, and both reported when both are wrong.
    let input = schema(&raw.input_schema)
        .map_err(|e| format!("input schema {e}"))
        .and_then(|s| compile(&s).map(|_| s).map_err(|e| format!("input schema is not a valid JSON Schema: {e}")));
    let output = match &raw.output_schema {
        None => Ok((None, None)),
        Some(text) => schema(text)
            .map_err(|e| format!("output schema {e}"))
            .and_then(|s| compile(&s).map(|v| (Some(s), Some(v))).map_err(|e| format!("output schema is not a valid JSON Schema: {e}"))),
    };
    let (input_schema, (output_schema, output)) = match (input, output) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(format!("tool '{tool}': {e}")),
        (Err(i), Err(o)) => return Err(format!("tool '{tool}': {i}; {o}")),
    };
    let annotations = raw.annotations.as_ref().map(|a| {
        let mut m = Map::new();
        for (k, v) in [
            ("readOnlyHint", a.read_only_hint),
            ("destructiveHint", a.destructive_hint),
            ("idempotentHint", a.idempotent_hint),
            ("openWorldHint", a.open_world_hint),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    });
    Ok(CheckedTool {
        descriptor: ToolDescriptor {
            name: raw.name.clone(),
            title: raw.title.clone(),
            description: raw.description.clone(),
            input_schema,
            output_schema,
            annotations,
            plugin: plugin.to_string(),
        },
        output,
    })
}

/// Check every spec of plugin `plugin`: the checked tools, or every
/// problem found (each naming its tool), not only the first.
pub(crate) fn check_all(plugin: &str, raw: &[RawToolSpec]) -> Result<Vec<CheckedTool>, Vec<String>> {
    let mut tools = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in raw {
        if !seen.insert(r.name.as_str()) {
            errors.push(format!("declares tool '{}' twice", r.name));
            continue;
        }
        match check(plugin, r) {
            Ok(t) => tools.push(t),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(tools)
    } else {
        Err(errors)
    }
}

/// Compile a schema, or say everything wrong with it: every meta-schema
/// violation with where it is, else the compiler's own message.
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|first| {
        let meta = jsonschema::draft202012::meta::validator();
        let all: Vec<String> = meta
            .iter_errors(schema)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if all.is_empty() {
            first.to_string()
        } else {
            all.join("; ")
        }
    })
}

/// Parse a schema text: JSON, an object, `"type": "object"` (MCP requires
/// object schemas for arguments and structured results).
fn schema(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("is not valid JSON ({e})"))?;
    let Some(obj) = v.as_object() else {
        return Err("is not a JSON object".into());
    };
    match obj.get("type") {
        Some(Value::String(t)) if t == "object" => Ok(v),
        _ => Err("must have \"type\": \"object\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, input: &str, output: Option<&str>) -> RawToolSpec {
        RawToolSpec {
            name: name.into(),
            title: Some("T".into()),
            description: "d".into(),
            input_schema: input.into(),
            output_schema: output.map(Into::into),
            annotations: Some(RawAnnotations {
                read_only_hint: Some(true),
                destructive_hint: None,
                idempotent_hint: None,
                open_world_hint: None,
            }),
        }
    }

    #[test]
    fn checks_names_and_schemas() {
        let ok = check("p", &raw("ok_tool-1", r#"{"type":"object"}"#, Some(r#"{"type":"object","properties":{"n":{"type":"integer"}}}"#)))
            .unwrap();
        assert_eq!(ok.descriptor.annotations.unwrap(), json!({"readOnlyHint": true}));
        assert!(ok.output.unwrap().is_valid(&json!({"n": 1})));
        for bad in ["", "has space", "dot.ted", &"x".repeat(65)] {
            assert!(check("p", &raw(bad, r#"{"type":"object"}"#, None)).unwrap_err().contains("invalid"), "{bad}");
        }
        assert!(check("p", &raw("t", "{not json", None)).unwrap_err().contains("not valid JSON"));
        assert!(check("p", &raw("t", r#"{"type":"string"}"#, None)).unwrap_err().contains("\"type\": \"object\""));
        assert!(check("p", &raw("t", r#"{"type":"object","properties":{"a":{"type":"nonsense"}}}"#, None))
            .unwrap_err()
            .contains("not a valid JSON Schema"));
        assert!(check("p", &raw("t", r#"{"type":"object"}"#, Some("[]"))).unwrap_err().contains("output schema"));
    }
}
