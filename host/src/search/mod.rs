//! The native log search core. Knows nothing of MCP, Redis or wasmtime.

pub mod api;
pub use api::*;
