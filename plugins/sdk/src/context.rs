//! What a tool sees of the call it serves.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{CallContext, SearchLimits, ToolError};

/// One call: the tool name, the arguments and what the host says about the
/// request (ids, user, deadline).
#[derive(Debug)]
pub struct Context {
    tool: String,
    args: Value,
    call: CallContext,
}

impl Context {
    /// A context built by hand, for unit-testing tools natively (outside a
    /// component); [`testing::TestHost`](crate::testing) builds one for you.
    pub fn new(tool: impl Into<String>, args: Value, call: CallContext) -> Self {
        Context { tool: tool.into(), args, call }
    }

    /// A context for unit tests: the given arguments, placeholder ids, a
    /// 10 s deadline and the default search limits.
    pub fn for_test(tool: impl Into<String>, args: Value) -> Self {
        Context::new(
            tool,
            args,
            CallContext {
                request_id: "1".into(),
                session_id: "test".into(),
                user: "test@local".into(),
                protocol_version: "2025-06-18".into(),
                client: None,
                traceparent: None,
                deadline_ms: 10_000,
                limits: SearchLimits::default(),
            },
        )
    }

    /// The name of the tool being called.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The arguments as the client sent them (a JSON object).
    pub fn raw_args(&self) -> &Value {
        &self.args
    }

    /// The arguments deserialized into `T`. A mismatch becomes
    /// [`ToolError::InvalidArguments`] with the JSON path of the bad value
    /// (`$.max_results`) and what is wrong with it.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, ToolError> {
        parse_args(&self.args)
    }

    /// One argument by name, deserialized into `T`; `Ok(None)` when absent
    /// or `null`.
    pub fn arg<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ToolError> {
        match self.args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| ToolError::invalid(format!("$.{name}"), e.to_string())),
        }
    }

    /// What the host says about this request.
    pub fn call_context(&self) -> &CallContext {
        &self.call
    }

    /// The JSON-RPC request id (as JSON text), for logs and correlation.
    pub fn request_id(&self) -> &str {
        &self.call.request_id
    }

    /// The session id (stable for one SSH session).
    pub fn session_id(&self) -> &str {
        &self.call.session_id
    }

    /// `user@address` the call is made for.
    pub fn user(&self) -> &str {
        &self.call.user
    }

    /// Milliseconds the host gave this call when it started. Past it, the
    /// host stops the instance.
    pub fn deadline_ms(&self) -> u64 {
        self.call.deadline_ms
    }

    /// The operator's search limits (`[limits]` in the manifest): the
    /// default and the cap of inline matches, the most context lines.
    pub fn limits(&self) -> &SearchLimits {
        &self.call.limits
    }
}

/// Deserialize `args` into `T`, reporting the JSON path of the first bad value.
pub(crate) fn parse_args<T: DeserializeOwned>(args: &Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." || path.is_empty() { "$".to_string() } else { format!("$.{path}") };
        ToolError::invalid(path, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct A {
        name: String,
        limit: Option<u32>,
        inner: Option<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    #[test]
    fn args_errors_name_the_path() {
        let ctx = Context::for_test("t", serde_json::json!({"name": "x", "limit": -1}));
        match ctx.args::<A>() {
            Err(ToolError::InvalidArguments(a)) => {
                assert_eq!(a.path, "$.limit");
                assert!(a.message.contains("-1"), "{}", a.message);
            }
            other => panic!("{other:?}"),
        }
        let ctx = Context::for_test("t", serde_json::json!({"name": "x", "inner": {"n": 300}}));
        match ctx.args::<A>() {
            Err(ToolError::InvalidArguments(a)) => assert_eq!(a.path, "$.inner.n"),
            other => panic!("{other:?}"),
        }
        let ctx = Context::for_test("t", serde_json::json!({}));
        match ctx.args::<A>() {
            Err(ToolError::InvalidArguments(a)) => {
                assert_eq!(a.path, "$");
                assert!(a.message.contains("name"), "{}", a.message);
            }
            other => panic!("{other:?}"),
        }
        let ctx = Context::for_test("t", serde_json::json!({"name": "ok"}));
        assert_eq!(ctx.args::<A>().unwrap().name, "ok");
        assert_eq!(ctx.arg::<String>("name").unwrap().as_deref(), Some("ok"));
        assert_eq!(ctx.arg::<u32>("limit").unwrap(), None);
    }
}
