//! The language contract's probes (tests/plugin_languages.rs), in Rust; the
//! same tools are written with the Python and JavaScript SDKs beside this
//! crate (`probe-python`, `probe-js`).
use logai_plugin_sdk::schemars::{self, JsonSchema};
use logai_plugin_sdk::{export_tools, fs, Context, Error, Tool};
use serde::Deserialize;

/// Read a file through the SDK's file helper.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeRead {
    /// The file to read.
    path: String,
}

impl Tool for ProbeRead {
    const NAME: &'static str = "probe_read";
    type Output = String;
    fn call(self, _ctx: &Context) -> Result<String, Error> {
        Ok(fs::read_to_string(&self.path)?)
    }
}

/// Loop forever (pure CPU, no host calls).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpin {}

impl Tool for ProbeSpin {
    const NAME: &'static str = "probe_spin";
    type Output = String;
    fn call(self, _ctx: &Context) -> Result<String, Error> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
}

export_tools!(Probe = ProbeRead, ProbeSpin);
