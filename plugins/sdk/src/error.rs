//! How a typed tool fails.

use crate::{CallResult, Denied, ToolError};

/// Why a typed tool's call did not succeed.
///
/// - [`Error::Failed`]: an answer the model should read and act on ("no
///   such service; call list_services first"), sent as an `isError: true`
///   result. [`Denied`] (a file, directory or environment variable the
///   plugin was not granted) becomes one, naming the grant to add.
/// - [`Error::Tool`]: a protocol-level failure (bad arguments, an internal
///   error), sent as a JSON-RPC error. `?` on a [`ToolError`] gives one.
#[derive(Clone, Debug)]
pub enum Error {
    /// A failure the model should read and act on (`isError: true`).
    Failed(String),
    /// A protocol-level failure.
    Tool(ToolError),
}

impl Error {
    /// A failure the model should read and act on.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    /// An invalid argument that the schema could not catch: `path` is a JSON
    /// path into the arguments (`$.until`), `message` says what is wrong.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Tool(ToolError::invalid(path, message))
    }

    /// The answer for the host.
    pub(crate) fn into_call_result(self) -> Result<CallResult, ToolError> {
        match self {
            Error::Failed(m) => Ok(CallResult::error(m)),
            Error::Tool(e) => Err(e),
        }
    }
}

impl From<ToolError> for Error {
    fn from(e: ToolError) -> Self {
        Error::Tool(e)
    }
}

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        Error::Failed(d.to_string())
    }
}

impl From<crate::fs::Error> for Error {
    fn from(e: crate::fs::Error) -> Self {
        Error::Failed(e.to_string())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Failed(m) => f.write_str(m),
            Error::Tool(ToolError::UnknownTool(t)) => write!(f, "unknown tool {t}"),
            Error::Tool(ToolError::InvalidArguments(a)) => write!(f, "invalid argument {}: {}", a.path, a.message),
            Error::Tool(ToolError::Internal(m)) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}
