//! Misbehaves by never returning.
use logai_plugin_sdk::{cancelled, export_tools, json, CallResult, Context, RawTool, ToolError, ToolSpec};

fn no_args() -> serde_json::Value {
    json!({"type": "object", "properties": {}})
}

/// Spins forever (pure CPU, no host calls).
pub struct Spin;
impl RawTool for Spin {
    fn spec() -> ToolSpec {
        ToolSpec::new("spin", "Loops forever.", no_args())
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
}

/// Sleeps for `ms` milliseconds (blocked in a host call, not spinning).
pub struct Sleep;
impl RawTool for Sleep {
    fn spec() -> ToolSpec {
        ToolSpec::new("sleep", "Sleeps.", json!({"type": "object", "properties": {"ms": {"type": "integer"}}}))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let ms: u64 = ctx.arg("ms")?.unwrap_or(3_600_000);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(CallResult::text(format!("slept {ms} ms")))
    }
}

/// Loops until the host says the call was cancelled, then says so.
pub struct UntilCancelled;
impl RawTool for UntilCancelled {
    fn spec() -> ToolSpec {
        ToolSpec::new("until_cancelled", "Loops until cancelled.", no_args())
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        let mut n: u64 = 0;
        while !cancelled() {
            n += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(CallResult::text(format!("cancelled after {n} polls")))
    }
}

/// Returns at once (a good tool beside the bad ones).
pub struct Quick;
impl RawTool for Quick {
    fn spec() -> ToolSpec {
        ToolSpec::new("quick", "Returns at once.", no_args())
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        Ok(CallResult::text("quick"))
    }
}

export_tools!(Spin, Sleep, UntilCancelled, Quick);
