//! What logai's exporter components share: the telemetry event as plain
//! Rust ([`model`], the records of `logai-records`, so mapping logic is
//! unit-tested on the host target), the bindings of world
//! `exporter-plugin` with their one conversion to those records, and a
//! blocking HTTP/1.1 client over WASI HTTP.
//!
//! An exporter implements `bindings::exports::logai::plugin::exporter::Guest`,
//! turns each `TelemetryEvent` into a [`model::Event`] with `Into`, and
//! exports itself with `logai_exporter_kit::bindings::export_exporter!(T)`.

#![warn(missing_docs)]

pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod wasi_http;

/// The bindings generated from `plugins/sdk/wit/plugin.wit` (world
/// `exporter-plugin`), and their conversions to and from the records.
#[cfg(target_arch = "wasm32")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "exporter-plugin",
        path: "../sdk/wit",
        pub_export_macro: true,
        export_macro_name: "export_exporter",
        default_bindings_module: "logai_exporter_kit::bindings",
    });

    logai_records::wit_metrics!(logai::plugin::metrics);
    logai_records::wit_telemetry!(logai::plugin::telemetry_types);
}
