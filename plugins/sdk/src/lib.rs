//! # logai plugin SDK
//!
//! Write a logai tool plugin (a WebAssembly component for `wasm32-wasip2`)
//! as Rust types and a function. A tool's arguments are a struct: its JSON
//! Schema is derived from the type (`schemars`), the host validates calls
//! against it, and the call arrives deserialized (a mismatch names the JSON
//! path at fault). The struct's doc comment is the tool's description; its
//! fields' doc comments describe the arguments.
//!
//! ```ignore
//! use logai_plugin_sdk::{export_tools, Context, Error, Tool};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! /// Greet someone by name.
//! #[derive(Deserialize, JsonSchema)]
//! struct Hello {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! impl Tool for Hello {
//!     const NAME: &'static str = "hello";
//!     type Output = String;
//!     fn call(self, _ctx: &Context) -> Result<String, Error> {
//!         Ok(format!("Hello, {}!", self.name))
//!     }
//! }
//!
//! export_tools!(Hello);
//! ```
//!
//! A tool answers with text (`String`), with data whose output schema is
//! derived too ([`Json`], or [`Structured`] for data plus a readable text),
//! or with a [`CallResult`] built by hand. It fails with an [`Error`]:
//! [`Error::failed`] for an answer the model should read and act on
//! (`isError: true`), [`ToolError`] (via `?`) for protocol-level failures.
//!
//! Tools with a hand-written schema implement [`RawTool`] instead; a plugin
//! whose tool list is dynamic implements [`Plugin`].
//!
//! The host imports ([`log`], [`progress`], [`cancelled`], [`search`],
//! [`metrics`]) and the sandboxed [`fs`] and [`env`] helpers work in native
//! unit tests too: see [`testing`] (log records captured, progress recorded,
//! search and metrics answered by the test's fixtures, grants emulated).
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to name in the manifest.
//!
//! Each call runs in a fresh instance: statics do not survive between calls.
//! A panic traps the instance; the host reports it to the client as a tool
//! error naming your plugin, with the panic message.

#![deny(missing_docs)]

/// The raw bindings generated from `wit/plugin.wit` (world `tool-plugin`;
/// the file ships inside this crate), and their one conversion to the
/// records of `logai-records` (search and metrics). Prefer the wrappers in
/// this crate: called natively (in unit tests), the raw imports abort.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "tool-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_tool_plugin_bindings",
        default_bindings_module: "logai_plugin_sdk::bindings",
    });

    logai_records::wit_search!(logai::plugin::search);
    logai_records::wit_aggregate!(logai::plugin::aggregate);
    logai_records::wit_metrics!(logai::plugin::metrics);
}

mod access;
mod context;
mod error;
mod imports;
mod result;
mod spec;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod typed;

pub use access::{env, fs, Denied};
pub use context::Context;
pub use error::Error;
pub use imports::{aggregate, cancelled, log, metrics, progress, search};
pub use serde_json::{json, Value};
pub use typed::{schema_of, IntoCallResult, Json, Structured, Tool};

/// The derive and attribute crate for argument and output types
/// (`#[derive(JsonSchema)]`), re-exported so plugins use the SDK's pinned
/// version.
pub use schemars;

pub use bindings::logai::plugin::types::{
    Blob, CallContext, CallResult, ContentBlock, EmbeddedResource, InvalidArgument, ResourceLink, SearchLimits, ToolAnnotations, ToolError,
    ToolSpec,
};

/// One tool with a hand-written spec (name, JSON Schema of the arguments,
/// ...). Typed tools ([`Tool`]) get this for free; implement it yourself
/// only to write the schema by hand. List tools with [`export_tools!`].
pub trait RawTool {
    /// The tool's spec. The host calls `tools.list` once at load time;
    /// build the same spec every time.
    fn spec() -> ToolSpec;

    /// The spec for the operator's search limits (the default ignores
    /// them and returns [`RawTool::spec`]).
    fn spec_for(limits: &SearchLimits) -> ToolSpec {
        let _ = limits;
        Self::spec()
    }

    /// Run the tool. The arguments were validated against the spec's input
    /// schema by the host before this runs; read them with
    /// [`Context::args`].
    ///
    /// Return `Ok(CallResult)` for answers, including failures the model
    /// should read and act on ([`CallResult::error`], `isError: true`);
    /// return `Err(ToolError)` for protocol-level failures (bad arguments,
    /// internal errors), which the client sees as JSON-RPC errors.
    fn call(ctx: &Context) -> Result<CallResult, ToolError>;

    /// Whether this tool is called `name` (typed tools compare their
    /// `NAME` without building the spec).
    #[doc(hidden)]
    fn __is_named(name: &str) -> bool {
        Self::spec().name == name
    }
}

/// A whole plugin: every tool it offers and a dispatcher. Implement this
/// directly when the tool list is dynamic or shares set-up; otherwise list
/// [`Tool`] and [`RawTool`] types with [`export_tools!`], which implements
/// it for you.
pub trait Plugin {
    /// Every tool, in the order clients should see them, for the
    /// operator's search limits.
    fn tools(limits: &SearchLimits) -> Vec<ToolSpec>;

    /// Run the tool named `name`. Return
    /// `Err(ToolError::UnknownTool(name))` for names you do not offer.
    fn call(name: &str, ctx: &Context) -> Result<CallResult, ToolError>;
}

impl Default for SearchLimits {
    /// The manifest's defaults: 100 matches inline by default, at most
    /// 1000, at most 10 context lines.
    fn default() -> Self {
        SearchLimits { default_max_results: 100, max_results_cap: 1000, max_context_lines: 10 }
    }
}

/// Export a type implementing [`Plugin`] as this component's `tools`
/// interface. Use once per crate.
///
/// ```ignore
/// struct MyPlugin;
/// impl logai_plugin_sdk::Plugin for MyPlugin { /* ... */ }
/// logai_plugin_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct __LogaiPluginExport;
            impl $crate::bindings::exports::logai::plugin::tools::Guest for __LogaiPluginExport {
                fn list(limits: $crate::SearchLimits) -> ::std::vec::Vec<$crate::ToolSpec> {
                    $crate::__private::list::<$plugin>(limits)
                }
                fn call(
                    name: ::std::string::String,
                    arguments: ::std::string::String,
                    context: $crate::CallContext,
                ) -> ::std::result::Result<$crate::CallResult, $crate::ToolError> {
                    $crate::__private::call::<$plugin>(name, arguments, context)
                }
            }
    $crate::bindings::__export_tool_plugin_bindings!(__LogaiPluginExport with_types_in $crate::bindings);
        };
    };
}

/// Export a list of tool types ([`Tool`] or [`RawTool`]) as this
/// component's tools: implements [`Plugin`] (dispatching by each tool's
/// name) and exports it. Use once per crate.
///
/// ```ignore
/// logai_plugin_sdk::export_tools!(Hello, WordCount);
/// ```
///
/// `export_tools!(Name = Hello, WordCount)` also names the generated
/// [`Plugin`] type, for tests that call tools by name
/// ([`testing::TestHost::call_plugin`]).
#[macro_export]
macro_rules! export_tools {
    ($plugin:ident = $($tool:ty),+ $(,)?) => {
        /// Every tool of this plugin (generated by `export_tools!`).
        pub struct $plugin;
        impl $crate::Plugin for $plugin {
            fn tools(limits: &$crate::SearchLimits) -> ::std::vec::Vec<$crate::ToolSpec> {
                ::std::vec![$(<$tool as $crate::RawTool>::spec_for(limits)),+]
            }
            fn call(
                name: &str,
                ctx: &$crate::Context,
            ) -> ::std::result::Result<$crate::CallResult, $crate::ToolError> {
                $(
                    if <$tool as $crate::RawTool>::__is_named(name) {
                        return <$tool as $crate::RawTool>::call(ctx);
                    }
                )+
                ::std::result::Result::Err($crate::ToolError::UnknownTool(name.to_string()))
            }
        }
        $crate::export_plugin!($plugin);
    };
    ($($tool:ty),+ $(,)?) => {
        const _: () = {
            $crate::export_tools!(__LogaiTools = $($tool),+);
        };
    };
}

/// Support for the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn list<P: Plugin>(limits: SearchLimits) -> Vec<ToolSpec> {
        P::tools(&limits)
    }

    pub fn call<P: Plugin>(name: String, arguments: String, context: CallContext) -> Result<CallResult, ToolError> {
        let args: Value = if arguments.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(&arguments).map_err(|e| ToolError::invalid("$", format!("arguments are not valid JSON: {e}")))?
        };
        let ctx = Context::new(name, args, context);
        P::call(ctx.tool(), &ctx)
    }
}
