//! # logai plugin SDK
//!
//! Write a logai tool plugin (a WebAssembly component for `wasm32-wasip2`)
//! as a trait implementation plus a JSON Schema. The SDK owns the WIT
//! bindings (`wit/plugin.wit`, world `tool-plugin`), turns your Rust types
//! into the contract's types, and wraps the host imports (`log`, `progress`,
//! `cancelled`, `search`, `metrics`) in safe functions.
//!
//! ```ignore
//! use logai_plugin_sdk::{export_tools, json, CallResult, Context, Tool, ToolError, ToolSpec};
//!
//! #[derive(serde::Deserialize)]
//! struct HelloArgs { name: String }
//!
//! struct Hello;
//!
//! impl Tool for Hello {
//!     fn spec() -> ToolSpec {
//!         ToolSpec::new("hello", "Greet someone by name.", json!({
//!             "type": "object",
//!             "properties": { "name": { "type": "string" } },
//!             "required": ["name"]
//!         }))
//!     }
//!     fn call(ctx: &Context) -> Result<CallResult, ToolError> {
//!         let args: HelloArgs = ctx.args()?;
//!         Ok(CallResult::text(format!("Hello, {}!", args.name)))
//!     }
//! }
//!
//! export_tools!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to name in the manifest.
//!
//! Each call runs in a fresh instance: statics do not survive between calls.
//! A panic traps the instance; the host reports it to the client as a tool
//! error naming your plugin, with the panic message.

#![warn(missing_docs)]

/// The raw bindings generated from `wit/plugin.wit` (world `tool-plugin`).
/// Prefer the wrappers in this crate; these are here for anything they miss.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tool-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_tool_plugin_bindings",
        default_bindings_module: "logai_plugin_sdk::bindings",
    });
}

mod context;
mod imports;
mod result;
mod spec;

pub use context::Context;
pub use imports::{cancelled, log, metrics, progress, search};
pub use serde_json::{json, Value};

pub use bindings::logai::plugin::types::{
    Blob, CallContext, CallResult, ContentBlock, EmbeddedResource, InvalidArgument, ResourceLink, ToolAnnotations, ToolError, ToolSpec,
};

/// One tool: its description (name, JSON Schema of the arguments, ...) and
/// what it does. List tools with [`export_tools!`].
pub trait Tool {
    /// The tool's spec. The host calls `tools.list` once at load time;
    /// build the same spec every time.
    fn spec() -> ToolSpec;

    /// Run the tool. The arguments were validated against the spec's input
    /// schema by the host before this runs; read them with
    /// [`Context::args`].
    ///
    /// Return `Ok(CallResult)` for answers, including failures the model
    /// should read and act on ([`CallResult::error`], `isError: true`);
    /// return `Err(ToolError)` for protocol-level failures (bad arguments,
    /// internal errors), which the client sees as JSON-RPC errors.
    fn call(ctx: &Context) -> Result<CallResult, ToolError>;
}

/// A whole plugin: every tool it offers and a dispatcher. Implement this
/// directly when the tool list is dynamic or shares set-up; otherwise list
/// [`Tool`] types with [`export_tools!`], which implements it for you.
pub trait Plugin {
    /// Every tool, in the order clients should see them.
    fn tools() -> Vec<ToolSpec>;

    /// Run the tool named `name`. Return
    /// `Err(ToolError::UnknownTool(name))` for names you do not offer.
    fn call(name: &str, ctx: &Context) -> Result<CallResult, ToolError>;
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
                fn list() -> ::std::vec::Vec<$crate::ToolSpec> {
                    $crate::__private::list::<$plugin>()
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

/// Export a list of [`Tool`] types as this component's tools: implements
/// [`Plugin`] (dispatching by the name in each tool's spec) and exports it.
/// Use once per crate.
///
/// ```ignore
/// logai_plugin_sdk::export_tools!(Hello, WordCount);
/// ```
#[macro_export]
macro_rules! export_tools {
    ($($tool:ty),+ $(,)?) => {
        const _: () = {
            struct __LogaiTools;
            impl $crate::Plugin for __LogaiTools {
                fn tools() -> ::std::vec::Vec<$crate::ToolSpec> {
                    ::std::vec![$(<$tool as $crate::Tool>::spec()),+]
                }
                fn call(
                    name: &str,
                    ctx: &$crate::Context,
                ) -> ::std::result::Result<$crate::CallResult, $crate::ToolError> {
                    $(
                        if <$tool as $crate::Tool>::spec().name == name {
                            return <$tool as $crate::Tool>::call(ctx);
                        }
                    )+
                    ::std::result::Result::Err($crate::ToolError::UnknownTool(name.to_string()))
                }
            }
            $crate::export_plugin!(__LogaiTools);
        };
    };
}

/// Support for the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn list<P: Plugin>() -> Vec<ToolSpec> {
        P::tools()
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
