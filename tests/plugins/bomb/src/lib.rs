//! Misbehaves by allocating without bound.
use logai_plugin_sdk::{export_tools, json, CallResult, Context, RawTool, ToolError, ToolSpec};

/// Allocates 1 MiB chunks (touching every page) until something stops it.
pub struct Alloc;
impl RawTool for Alloc {
    fn spec() -> ToolSpec {
        ToolSpec::new("alloc", "Allocates memory without bound.", json!({"type": "object", "properties": {"mb": {"type": "integer"}}}))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let limit: Option<u64> = ctx.arg("mb")?;
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            if limit.is_some_and(|l| hoard.len() as u64 >= l) {
                return Ok(CallResult::text(format!("allocated {} MiB", hoard.len())));
            }
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_tools!(Alloc);
