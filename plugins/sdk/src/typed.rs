//! Typed tools: arguments and results are Rust types, their JSON Schemas
//! derived with `schemars`.

use schemars::generate::{Contract, SchemaSettings};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{CallResult, Context, Error, RawTool, SearchLimits, ToolError, ToolSpec};

/// A tool whose arguments are `Self`: a struct deriving `Deserialize` and
/// `JsonSchema`. Its input schema is derived from the type (field doc
/// comments become property descriptions, `#[serde(default)]` fields are
/// optional, `Option<T>` fields may be left out, `#[serde(deny_unknown_fields)]`
/// refuses other arguments, `#[schemars(range(min = 1, max = 10))]` and
/// `#[schemars(length(min = 1))]` bound values); the type's doc comment is
/// the tool's description.
///
/// ```ignore
/// /// Greet someone by name.
/// #[derive(Deserialize, JsonSchema)]
/// struct Hello { /// Who to greet.
///     name: String }
///
/// impl Tool for Hello {
///     const NAME: &'static str = "hello";
///     type Output = String;
///     fn call(self, _ctx: &Context) -> Result<String, Error> {
///         Ok(format!("Hello, {}!", self.name))
///     }
/// }
/// ```
pub trait Tool: DeserializeOwned + JsonSchema + Sized {
    /// The tool's name, `[a-zA-Z0-9_-]{1,64}`, unique across every loaded
    /// plugin. Written once: the spec and the dispatcher both use it.
    const NAME: &'static str;

    /// What the tool answers: `String` (text), [`Json<T>`] or
    /// [`Structured<T>`] (data, with an output schema derived from `T`), or
    /// a [`CallResult`] built by hand.
    type Output: IntoCallResult;

    /// Run the tool with its arguments (already validated by the host
    /// against the derived schema, and deserialized).
    fn call(self, ctx: &Context) -> Result<Self::Output, Error>;

    /// Adjust the derived spec: a title, annotations
    /// ([`ToolSpec::read_only`]), a description or schema bounds that
    /// depend on the operator's search `limits`. The default keeps it.
    fn spec(spec: ToolSpec, limits: &SearchLimits) -> ToolSpec {
        let _ = limits;
        spec
    }
}

impl<T: Tool> RawTool for T {
    fn spec() -> ToolSpec {
        Self::spec_for(&SearchLimits::default())
    }

    fn spec_for(limits: &SearchLimits) -> ToolSpec {
        let mut input = schema_of::<T>(Contract::Deserialize);
        let description = match input.as_object_mut().and_then(|o| o.remove("description")) {
            Some(Value::String(d)) => d,
            _ => String::new(),
        };
        // Some clients insist on `properties` in an object schema, even empty.
        if let Some(o) = input.as_object_mut() {
            o.entry("properties").or_insert_with(|| Value::Object(Map::new()));
        }
        let mut spec = ToolSpec::new(T::NAME, description, input);
        spec.output_schema = T::Output::output_schema().map(|s| s.to_string());
        <T as Tool>::spec(spec, limits)
    }

    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let args: T = ctx.args()?;
        match Tool::call(args, ctx) {
            Ok(out) => out.into_call_result(),
            Err(e) => e.into_call_result(),
        }
    }

    fn __is_named(name: &str) -> bool {
        T::NAME == name
    }
}

/// What a typed tool can answer with.
pub trait IntoCallResult {
    /// The JSON Schema of the structured content, when there is one.
    fn output_schema() -> Option<Value>;

    /// The answer in the contract's terms.
    fn into_call_result(self) -> Result<CallResult, ToolError>;
}

impl IntoCallResult for String {
    fn output_schema() -> Option<Value> {
        None
    }
    fn into_call_result(self) -> Result<CallResult, ToolError> {
        Ok(CallResult::text(self))
    }
}

impl IntoCallResult for CallResult {
    /// None: declare one with [`ToolSpec::output_schema`] in
    /// [`Tool::spec`] when the result carries structured content.
    fn output_schema() -> Option<Value> {
        None
    }
    fn into_call_result(self) -> Result<CallResult, ToolError> {
        Ok(self)
    }
}

/// Data as the answer: `structuredContent` is `T` (a JSON object), the
/// text block is the same JSON, pretty-printed. The tool's output schema is
/// derived from `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Json<T>(pub T);

impl<T: Serialize + JsonSchema> IntoCallResult for Json<T> {
    fn output_schema() -> Option<Value> {
        Some(schema_of::<T>(Contract::Serialize))
    }
    fn into_call_result(self) -> Result<CallResult, ToolError> {
        CallResult::json(&self.0)
    }
}

/// Data plus a text written for people (and models that do not read
/// structured content): `structuredContent` is `value`, the text block is
/// `text`. The tool's output schema is derived from `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Structured<T> {
    /// The readable text block.
    pub text: String,
    /// The structured content (serializes to a JSON object).
    pub value: T,
}

impl<T> Structured<T> {
    /// `value` with its readable `text`.
    pub fn new(text: impl Into<String>, value: T) -> Self {
        Structured { text: text.into(), value }
    }
}

impl<T: Serialize + JsonSchema> IntoCallResult for Structured<T> {
    fn output_schema() -> Option<Value> {
        Some(schema_of::<T>(Contract::Serialize))
    }
    fn into_call_result(self) -> Result<CallResult, ToolError> {
        CallResult::structured(self.text, &self.value)
    }
}

/// The JSON Schema of `T` as clients see it: everything inline (no
/// `$defs`), no `$schema` or `title` noise, `Option<T>` fields meaning
/// "may be left out" rather than "may be null", no Rust integer formats.
pub fn schema_of<T: JsonSchema>(contract: Contract) -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
            s.contract = contract;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(o) = schema.as_object_mut() {
        o.remove("title");
    }
    tidy(&mut schema);
    schema
}

/// Rust integer formats (`uint32`, ...) mean nothing to clients; `null`
/// alternatives of `Option` fields are dropped (leaving a field out is how
/// a tool's arguments and results say "none").
fn tidy(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(f)) = o.get("format") {
                if matches!(
                    f.as_str(),
                    "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64" | "uint" | "int" | "float" | "double"
                ) {
                    o.remove("format");
                }
            }
            if let Some(Value::Array(types)) = o.get("type") {
                let kept: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
                if kept.len() == 1 {
                    o.insert("type".into(), kept[0].clone());
                } else if kept.len() != types.len() {
                    o.insert("type".into(), Value::Array(kept));
                }
            }
            if let Some(Value::Array(any)) = o.get("anyOf") {
                let kept: Vec<Value> = any.iter().filter(|s| !is_null_schema(s)).cloned().collect();
                if kept.len() == 1 && kept.len() != any.len() {
                    o.remove("anyOf");
                    if let Value::Object(inner) = kept[0].clone() {
                        merge_under(o, inner);
                    }
                } else if kept.len() != any.len() {
                    o.insert("anyOf".into(), Value::Array(kept));
                }
            }
            if let Some(Value::Array(e)) = o.get_mut("enum") {
                e.retain(|x| !x.is_null());
            }
            for (_, child) in o.iter_mut() {
                tidy(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(tidy),
        _ => {}
    }
}

fn is_null_schema(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("null") || s.get("const").is_some_and(Value::is_null)
}

/// Put `inner`'s keywords into `outer`, keeping `outer`'s own (its
/// `description`, `default`).
fn merge_under(outer: &mut Map<String, Value>, inner: Map<String, Value>) {
    for (k, v) in inner {
        outer.entry(k).or_insert(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    /// Greets.
    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Greet {
        /// Who.
        #[schemars(length(min = 1))]
        name: String,
        /// How many times.
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 5))]
        times: u32,
        /// Optional.
        nick: Option<String>,
        mode: Option<Mode>,
    }

    fn one() -> u32 {
        1
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Loud,
        Quiet,
    }

    #[derive(Serialize, JsonSchema)]
    struct Out {
        n: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    impl Tool for Greet {
        const NAME: &'static str = "greet";
        type Output = Json<Out>;
        fn call(self, _ctx: &Context) -> Result<Json<Out>, Error> {
            Ok(Json(Out { n: self.times as u64, note: None }))
        }
    }

    #[test]
    fn schemas_are_derived_as_clients_expect() {
        let spec = <Greet as RawTool>::spec();
        assert_eq!(spec.name, "greet");
        assert_eq!(spec.description, "Greets.");
        let input: Value = serde_json::from_str(&spec.input_schema).unwrap();
        assert_eq!(
            input,
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "Who."},
                    "times": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1, "description": "How many times."},
                    "nick": {"type": "string", "description": "Optional."},
                    "mode": {"type": "string", "enum": ["loud", "quiet"]}
                },
                "required": ["name"],
                "additionalProperties": false
            })
        );
        let output: Value = serde_json::from_str(spec.output_schema.as_deref().unwrap()).unwrap();
        assert_eq!(
            output,
            json!({
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 0}, "note": {"type": "string"}},
                "required": ["n"]
            })
        );
    }

    #[test]
    fn typed_calls_deserialize_and_answer() {
        let ctx = Context::for_test("greet", json!({"name": "a", "times": 3}));
        let r = <Greet as RawTool>::call(&ctx).unwrap();
        assert_eq!(r.structured_content.as_deref(), Some(r#"{"n":3}"#));
        let ctx = Context::for_test("greet", json!({"name": "a", "times": "x"}));
        match <Greet as RawTool>::call(&ctx) {
            Err(ToolError::InvalidArguments(a)) => assert_eq!(a.path, "$.times"),
            other => panic!("{other:?}"),
        }
        let ctx = Context::for_test("greet", json!({"name": "a", "bogus": 1}));
        assert!(matches!(<Greet as RawTool>::call(&ctx), Err(ToolError::InvalidArguments(_))));
    }
}
