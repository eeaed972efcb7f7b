//! `logai serve` and friends: wires the rooms together. The search path
//! (rate limit → cache → permit → search core → cache store) lives in
//! [`gateway`]; everything else is construction and shutdown order.

use std::process::ExitCode;

use crate::config::Config;

mod gateway;
pub use gateway::Gateway;

/// Serve MCP over stdio until EOF.
pub fn run(_config: Config) -> anyhow::Result<ExitCode> {
    anyhow::bail!("serve is being wired")
}

/// `logai precompile`.
pub fn precompile(_config: &Config) -> anyhow::Result<ExitCode> {
    anyhow::bail!("precompile is being wired")
}

/// `logai plugins list`.
pub fn list_plugins(_config: &Config) -> anyhow::Result<ExitCode> {
    anyhow::bail!("plugins list is being wired")
}
