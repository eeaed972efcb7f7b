//! Host bindings generated from `plugins/sdk/wit/plugin.wit` (the SDK carries the one copy), and the one place the
//! host converts between the generated types and the shared records (`logai-records`: search, metrics, telemetry).

pub(crate) mod tool {
    wasmtime::component::bindgen!({
        path: "../plugins/sdk/wit",
        world: "tool-plugin",
        imports: {
            "logai:plugin/search": async,
            "logai:plugin/aggregate": async,
            "logai:plugin/metrics": async,
        },
        exports: { default: async },
    });
}

pub(crate) mod exporter {
    wasmtime::component::bindgen!({
        path: "../plugins/sdk/wit",
        world: "exporter-plugin",
        exports: { default: async },
        with: {
            "logai:plugin/log": super::tool::logai::plugin::log,
            "logai:plugin/metrics": super::tool::logai::plugin::metrics,
        },
    });
}

// The records (`logai-records`) to and from the generated types, one call
// per WIT interface; the field lists are the records' own.
logai_records::wit_search!(tool::logai::plugin::search);
logai_records::wit_aggregate!(tool::logai::plugin::aggregate);
logai_records::wit_metrics!(tool::logai::plugin::metrics);
logai_records::wit_telemetry!(exporter::logai::plugin::telemetry_types);
