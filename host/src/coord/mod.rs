//! Cross-session coordination: permits, shared cache, rate limits, shared
//! metrics — Redis with a local fallback. Knows nothing of wasmtime or MCP.

pub mod metrics_types;
pub use metrics_types::*;
