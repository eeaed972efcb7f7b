//! What logai's exporter components share: the telemetry event as plain
//! Rust (mirrors WIT `telemetry-types`, so mapping logic is unit-tested on
//! the host target) and a blocking HTTP/1.1 client over WASI HTTP.

#![warn(missing_docs)]

pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod wasi_http;
