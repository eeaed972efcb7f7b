//! The tool catalog: descriptors, their compiled JSON Schemas, the JSON
//! shown by `tools/list`, and argument validation errors as JSON paths.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::call::ToolDescriptor;

/// A tool as served: the descriptor, its listing JSON and compiled schemas.
pub(crate) struct CatalogEntry {
    pub desc: ToolDescriptor,
    pub listing: Value,
    /// Compiled input schema, or why it could not be compiled.
    pub input: Result<jsonschema::Validator, String>,
    /// Compiled output schema (when declared), or why it could not be compiled.
    pub output: Option<Result<jsonschema::Validator, String>>,
}

/// Every tool, in the host's order, compiled once when the server starts.
pub(crate) struct Catalog {
    pub entries: Vec<CatalogEntry>,
    by_name: HashMap<String, usize>,
}

/// A schema violation: a JSON path (relative to the request's `params`) and
/// a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    pub path: String,
    pub message: String,
}

impl Catalog {
    pub fn build(tools: Vec<ToolDescriptor>) -> Catalog {
        let mut entries = Vec::with_capacity(tools.len());
        let mut by_name = HashMap::new();
        for desc in tools {
            if by_name.contains_key(&desc.name) {
                tracing::error!(
                    tool = %desc.name,
                    plugin = %desc.plugin,
                    "tool name declared twice; the later declaration is ignored"
                );
                continue;
            }
            let input = jsonschema::validator_for(&desc.input_schema).map_err(|e| {
                let msg = format!("plugin '{}' declares tool '{}' with an invalid inputSchema: {e}", desc.plugin, desc.name);
                tracing::error!("{msg}");
                msg
            });
            let output = desc.output_schema.as_ref().map(|schema| {
                jsonschema::validator_for(schema).map_err(|e| {
                    let msg = format!("plugin '{}' declares tool '{}' with an invalid outputSchema: {e}", desc.plugin, desc.name);
                    tracing::error!("{msg}");
                    msg
                })
            });
            let mut listing = Map::new();
            listing.insert("name".into(), json!(desc.name));
            if let Some(t) = &desc.title {
                listing.insert("title".into(), json!(t));
            }
            listing.insert("description".into(), json!(desc.description));
            listing.insert("inputSchema".into(), desc.input_schema.clone());
            if let Some(o) = &desc.output_schema {
                listing.insert("outputSchema".into(), o.clone());
            }
            if let Some(a) = &desc.annotations {
                listing.insert("annotations".into(), a.clone());
            }
            by_name.insert(desc.name.clone(), entries.len());
            entries.push(CatalogEntry { desc, listing: Value::Object(listing), input, output });
        }
        Catalog { entries, by_name }
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }
}

/// The first schema violation of `instance`, with its path prefixed by
/// `prefix` (e.g. `$.arguments`).
pub(crate) fn first_violation(validator: &jsonschema::Validator, instance: &Value, prefix: &str) -> Option<Violation> {
    let err = validator.iter_errors(instance).next()?;
    let mut path = pointer_to_path(prefix, err.instance_path().as_str());
    use jsonschema::error::ValidationErrorKind as K;
    let message = match err.kind() {
        K::Type { kind } => {
            let expected: Vec<String> = match kind {
                jsonschema::error::TypeKind::Single(t) => vec![t.to_string()],
                jsonschema::error::TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            format!("expected {}, got {}", expected.join(" or "), json_type_name(err.instance()))
        }
        K::Required { property } => {
            let name = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            path = push_key(&path, &name);
            "required property is missing".to_string()
        }
        K::AdditionalProperties { unexpected } if !unexpected.is_empty() => {
            path = push_key(&path, &unexpected[0]);
            if unexpected.len() == 1 {
                "unexpected property (not allowed by the schema)".to_string()
            } else {
                format!("unexpected property (not allowed by the schema; also unexpected: {})", unexpected[1..].join(", "))
            }
        }
        _ => err.to_string(),
    };
    Some(Violation { path, message })
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    json_type_name(v)
}

/// `prefix` + a JSON Pointer (`/a/0/b~1c`) as a JSON path (`$.x.a[0]['b/c']`).
pub(crate) fn pointer_to_path(prefix: &str, pointer: &str) -> String {
    let mut path = prefix.to_string();
    if pointer.is_empty() {
        return path;
    }
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) && seg.len() < 10 {
            path.push('[');
            path.push_str(&seg);
            path.push(']');
        } else {
            path = push_key(&path, &seg);
        }
    }
    path
}

/// Append an object key to a JSON path: `.key` when it is an identifier,
/// `['k e y']` otherwise.
pub(crate) fn push_key(path: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", serde_json::to_string(key).unwrap_or_default().replace('\'', "\\'").replace('"', "'"))
    }
}

/// A plugin's path (relative to the arguments, `$.max_results`) made
/// relative to the request params (`$.arguments.max_results`).
pub(crate) fn plugin_path_to_params(path: &str) -> String {
    let p = path.trim();
    if let Some(rest) = p.strip_prefix('$') {
        if rest.starts_with(".arguments") {
            return p.to_string();
        }
        return format!("$.arguments{rest}");
    }
    if p.is_empty() {
        return "$.arguments".into();
    }
    // a bare field name (`max_results`)
    if p.starts_with('[') {
        format!("$.arguments{p}")
    } else {
        format!("$.arguments.{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_json_paths() {
        assert_eq!(pointer_to_path("$.arguments", ""), "$.arguments");
        assert_eq!(pointer_to_path("$.arguments", "/max_results"), "$.arguments.max_results");
        assert_eq!(pointer_to_path("$.arguments", "/items/3/a~1b"), "$.arguments.items[3]['a/b']");
        assert_eq!(push_key("$", "with space"), "$['with space']");
    }

    #[test]
    fn plugin_paths_are_rebased() {
        assert_eq!(plugin_path_to_params("$.max_results"), "$.arguments.max_results");
        assert_eq!(plugin_path_to_params("$"), "$.arguments");
        assert_eq!(plugin_path_to_params("service"), "$.arguments.service");
        assert_eq!(plugin_path_to_params("$.arguments.x"), "$.arguments.x");
    }

    #[test]
    fn violations_name_path_and_types() {
        let v = jsonschema::validator_for(&json!({
            "type": "object",
            "properties": {"service": {"type": "string"}, "max_results": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["service"],
            "additionalProperties": false
        }))
        .unwrap();
        let e = first_violation(&v, &json!({"service": "x", "max_results": "5"}), "$.arguments").unwrap();
        assert_eq!(e.path, "$.arguments.max_results");
        assert_eq!(e.message, "expected integer, got string");
        let e = first_violation(&v, &json!({}), "$.arguments").unwrap();
        assert_eq!(e.path, "$.arguments.service");
        let e = first_violation(&v, &json!({"service": "x", "tags": ["a", 1]}), "$.arguments").unwrap();
        assert_eq!(e.path, "$.arguments.tags[1]");
        let e = first_violation(&v, &json!({"service": "x", "bogus": 1}), "$.arguments").unwrap();
        assert_eq!(e.path, "$.arguments.bogus");
        assert!(first_violation(&v, &json!({"service": "x"}), "$.arguments").is_none());
    }
}
