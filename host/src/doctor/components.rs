//! `plugin:NAME`, `exporter:NAME`: every enabled tool plugin loads as
//! `serve` would load it (what `logai plugins list` and `config check`
//! report), and every enabled exporter loads and accepts its settings.

use super::Finding;
use crate::config::Config;

pub(super) fn check(config: &Config) -> Vec<Finding> {
    let mut out = plugins(config);
    out.extend(exporters(config));
    out
}

fn plugins(config: &Config) -> Vec<Finding> {
    let listings = match crate::plugins::list(config) {
        Ok(l) => l,
        Err(e) => return vec![Finding::fail("plugin", format!("the plugin loader could not start: {e:#}"), "run `logai plugins list`")],
    };
    let mut out = Vec::new();
    for p in listings.iter().filter(|p| p.kind == "plugin" && p.enabled) {
        let check = format!("plugin:{}", p.name);
        out.push(match &p.tools {
            Ok(tools) => {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                Finding::ok(check, format!("loads ({} tools: {})", names.len(), names.join(", ")))
            }
            Err(e) => Finding::fail(
                check,
                format!("does not load: {e}"),
                format!("fix or rebuild {} (or set enabled = false); `logai config check` names every problem", p.component.display()),
            ),
        });
    }
    out
}

fn exporters(config: &Config) -> Vec<Finding> {
    let enabled: Vec<_> = crate::telemetry::exporters::enabled(config).into_iter().cloned().collect();
    if enabled.is_empty() {
        return Vec::new();
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return vec![Finding::fail("exporter", format!("cannot start a runtime to load exporters: {e}"), "")],
    };
    enabled
        .iter()
        .map(|x| {
            let check = format!("exporter:{}", x.name);
            match rt.block_on(crate::telemetry::exporters::load_one(config, x)) {
                Ok(_) => Finding::ok(check, format!("loads and accepts its settings ({})", config.resolve(&x.component).display())),
                Err(e) => Finding::fail(
                    check,
                    format!("does not load: {e:#}"),
                    "fix the component path or its settings in the manifest (or set enabled = false); `logai serve` runs without it",
                ),
            }
        })
        .collect()
}
