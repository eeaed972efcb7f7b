//! logai: answers agents' questions about a machine's logs over MCP.
//!
//! Rooms, each with one job:
//! - [`config`]: the manifest (`logai.toml`), `${VAR}` expansion, `.env`.
//! - [`mcp`]: JSON-RPC over stdio, both protocol eras; knows nothing of Redis or wasmtime.
//! - [`plugins`]: the WebAssembly runtime; the only room that touches wasmtime.
//! - [`search`]: the native log search core; knows nothing of MCP or Redis.
//! - [`lookup`]: the search path: one search answered through the shared cache
//!   (exact key, covering answers, single flight), permits and tail resume;
//!   every cache key is made here; and who may search what (`[access]`).
//! - [`patterns`]: the log pattern miner (templates, counts); knows nothing of MCP or Redis.
//! - [`coord`]: cross-session limits, cache, rate limits, metrics (Redis with local fallback).
//! - [`telemetry`]: events, the bounded export queue, exporter plumbing.
//! - [`serve`]: wires the rooms together for `logai serve`.
//! - [`doctor`]: `logai doctor`, every check of a log host in one command.

pub mod call;
pub mod config;
pub mod coord;
pub mod digest;
pub mod doctor;
pub mod identity;
pub mod lookup;
pub mod mcp;
pub mod patterns;
pub mod plugins;
pub mod scaffold;
pub mod search;
pub mod serve;
pub mod telemetry;
