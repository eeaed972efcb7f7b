//! `manifest`: the manifest is found, parses and validates (what
//! `logai config check` reports first).

use std::path::Path;

use super::Finding;
use crate::config::{self, Config};

/// The loaded manifest (none when it is invalid: nothing else can be
/// checked) and what was seen.
pub(super) fn check(explicit: Option<&Path>) -> (Option<Config>, Vec<Finding>) {
    let source = config::locate(explicit);
    match config::load_from(source.clone()) {
        Ok(c) => {
            let seen = format!(
                "{source}: valid ({} services, {} plugins, {} exporters enabled{})",
                c.service.len(),
                c.plugin.iter().filter(|p| p.enabled).count(),
                c.exporter.iter().filter(|x| x.enabled).count(),
                if c.access.is_some() { ", [access] set" } else { "" }
            );
            (Some(c), vec![Finding::ok("manifest", seen)])
        }
        Err(e) => (
            None,
            vec![Finding::fail(
                "manifest",
                e.to_string(),
                "fix the manifest at the place named (`logai config check` checks it again); nothing else was checked",
            )],
        ),
    }
}
