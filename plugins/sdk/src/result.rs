//! Building results and errors.

use serde::Serialize;

use crate::{CallResult, ContentBlock, InvalidArgument, ToolError};

impl CallResult {
    /// A plain text answer.
    pub fn text(text: impl Into<String>) -> Self {
        CallResult { content: vec![ContentBlock::Text(text.into())], structured_content: None, is_error: false }
    }

    /// A failure the model should read and act on (`isError: true`), such
    /// as "no such service; call list_services".
    pub fn error(text: impl Into<String>) -> Self {
        CallResult { content: vec![ContentBlock::Text(text.into())], structured_content: None, is_error: true }
    }

    /// A structured answer: `value` becomes `structuredContent` (it must be
    /// a JSON object matching the tool's output schema, when one is
    /// declared) and `text` the readable content block. Clients that do not
    /// read structured content see the text.
    pub fn structured<T: Serialize>(text: impl Into<String>, value: &T) -> Result<Self, ToolError> {
        let json = serde_json::to_string(value).map_err(|e| ToolError::Internal(format!("cannot serialize the structured result: {e}")))?;
        Ok(CallResult { content: vec![ContentBlock::Text(text.into())], structured_content: Some(json), is_error: false })
    }

    /// A structured answer whose text block is the JSON itself (pretty
    /// printed), for tools whose output is only data.
    pub fn json<T: Serialize>(value: &T) -> Result<Self, ToolError> {
        let text =
            serde_json::to_string_pretty(value).map_err(|e| ToolError::Internal(format!("cannot serialize the structured result: {e}")))?;
        Ok(CallResult { content: vec![ContentBlock::Text(text.clone())], structured_content: Some(compact(&text)), is_error: false })
    }

    /// Add another content block.
    pub fn with(mut self, block: ContentBlock) -> Self {
        self.content.push(block);
        self
    }
}

fn compact(pretty: &str) -> String {
    serde_json::from_str::<serde_json::Value>(pretty).map(|v| v.to_string()).unwrap_or_else(|_| pretty.to_string())
}

impl ToolError {
    /// An invalid argument: `path` is a JSON path into the arguments
    /// (`$.max_results`), `message` says what is wrong.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ToolError::InvalidArguments(InvalidArgument { path: path.into(), message: message.into() })
    }

    /// Any other protocol-level failure; the message is shown to the client.
    pub fn internal(message: impl Into<String>) -> Self {
        ToolError::Internal(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let r = CallResult::text("hi");
        assert!(!r.is_error);
        assert!(matches!(&r.content[0], ContentBlock::Text(t) if t == "hi"));
        assert!(CallResult::error("no").is_error);
        let r = CallResult::structured("2 words", &serde_json::json!({"words": 2})).unwrap();
        assert_eq!(r.structured_content.as_deref(), Some(r#"{"words":2}"#));
        let r = CallResult::json(&serde_json::json!({"a": [1, 2]})).unwrap();
        assert_eq!(r.structured_content.as_deref(), Some(r#"{"a":[1,2]}"#));
    }
}
