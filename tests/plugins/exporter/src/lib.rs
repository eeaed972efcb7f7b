//! A test exporter: counts exported events (state lives as long as the
//! instance), hangs on an event named `hang`, panics on one named `panic`,
//! and renders its count. `configure` fails for `{"fail": true}`.

wit_bindgen::generate!({
    path: "../../../plugins/sdk/wit",
    world: "exporter-plugin",
});

use std::cell::RefCell;

use exports::logai::plugin::exporter::{Guest, Snapshot, TelemetryEvent};

thread_local! {
    static STATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

struct TestExporter;

impl Guest for TestExporter {
    fn configure(config: String) -> Result<(), String> {
        let v: serde_json::Value = serde_json::from_str(&config).map_err(|e| format!("settings are not JSON: {e}"))?;
        if v.get("fail").and_then(|f| f.as_bool()) == Some(true) {
            return Err("told to fail".into());
        }
        let label = v.get("label").and_then(|l| l.as_str()).unwrap_or("").to_string();
        STATE.with(|s| s.borrow_mut().1 = label);
        logai::plugin::log::write(logai::plugin::log::Level::Info, "configured");
        Ok(())
    }

    fn export(batch: Vec<TelemetryEvent>) -> Result<(), String> {
        for e in &batch {
            match e.name.as_str() {
                "hang" => loop {
                    std::hint::black_box(0);
                },
                "panic" => panic!("the test exporter panics on request"),
                "reject" => return Err("rejected the batch".into()),
                _ => {}
            }
        }
        STATE.with(|s| s.borrow_mut().0 += batch.len() as u64);
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }

    fn render(metrics: Snapshot) -> Option<String> {
        let (n, label) = STATE.with(|s| s.borrow().clone());
        Some(format!("exported={n} label={label} counters={} source={}", metrics.counters.len(), metrics.source))
    }
}

export!(TestExporter);
