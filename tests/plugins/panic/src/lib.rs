//! Misbehaves by panicking or trapping.
use logai_plugin_sdk::{export_tools, json, CallResult, Context, RawTool, ToolError, ToolSpec};

/// Panics with a message.
pub struct Boom;
impl RawTool for Boom {
    fn spec() -> ToolSpec {
        ToolSpec::new("boom", "Panics.", json!({"type": "object", "properties": {}}))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        panic!("the boom tool always panics");
    }
}

/// Executes `unreachable` (no panic message).
pub struct Unreachable;
impl RawTool for Unreachable {
    fn spec() -> ToolSpec {
        ToolSpec::new("unreachable", "Traps.", json!({"type": "object", "properties": {}}))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        unreachable!()
    }
}

/// Recurses until the stack overflows.
pub struct Deep;
impl RawTool for Deep {
    fn spec() -> ToolSpec {
        ToolSpec::new("deep", "Overflows its stack.", json!({"type": "object", "properties": {}}))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        #[allow(unconditional_recursion)]
        fn recurse(pad: [u64; 16]) -> u64 {
            std::hint::black_box(&pad);
            recurse(std::hint::black_box(pad)) + 1
        }
        Ok(CallResult::text(format!("{}", recurse([0; 16]))))
    }
}

/// Remembers a counter in a static: a fresh instance per call means it is
/// always 1.
pub struct Counter;
static mut CALLS: u64 = 0;
impl RawTool for Counter {
    fn spec() -> ToolSpec {
        ToolSpec::new("counter", "Counts its calls in a static.", json!({"type": "object", "properties": {}}))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        // SAFETY: single-threaded guest.
        let n = unsafe {
            CALLS += 1;
            CALLS
        };
        Ok(CallResult::text(format!("{n}")))
    }
}

export_tools!(Boom, Unreachable, Deep, Counter);
