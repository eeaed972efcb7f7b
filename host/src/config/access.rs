//! `[access]`: which services each person may search.
//!
//! ```toml
//! [access]
//! account = "logai"            # the serving account; `--as` is honoured only under it
//! default = ["app"]            # everyone's services
//! [access.people]
//! alice = ["*"]                # "*": every service
//! [access.groups.security]
//! members = ["carol"]
//! services = ["auth"]
//! ```
//!
//! A person may search the union of `default`, their `people` entry and
//! the `services` of every group listing them in `members`. Without an
//! `[access]` section everyone may search every service. Names in the
//! lists must be configured services (or `"*"`), checked by `config check`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// Every service, in a service list.
pub const ALL_SERVICES: &str = "*";

/// `[access]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// The account forced commands run as (`logai serve --as NAME`); when
    /// set, `--as` is refused under any other account.
    pub account: Option<String>,
    /// Services everyone may search.
    pub default: Vec<String>,
    /// Services by person (the `--as` name, else the local account).
    pub people: BTreeMap<String, Vec<String>>,
    /// Named groups of people and the services they may search.
    pub groups: BTreeMap<String, AccessGroup>,
}

/// `[access.groups.NAME]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessGroup {
    pub members: Vec<String>,
    pub services: Vec<String>,
}

impl AccessConfig {
    /// The services `person` may search; `None`: every service.
    pub fn services_of(&self, person: &str) -> Option<Vec<String>> {
        let mut lists: Vec<&Vec<String>> = vec![&self.default];
        lists.extend(self.people.get(person));
        lists.extend(self.groups.values().filter(|g| g.members.iter().any(|m| m == person)).map(|g| &g.services));
        let mut out: Vec<String> = Vec::new();
        for name in lists.into_iter().flatten() {
            if name == ALL_SERVICES {
                return None;
            }
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        Some(out)
    }
}

/// Every problem of `[access]`: service names that are not configured,
/// malformed person names; each located in `text` (the manifest as written).
pub(crate) fn validate(config: &Config, text: &str, file: &str) -> Vec<ConfigError> {
    let Some(access) = &config.access else { return Vec::new() };
    // Point into the [access] section: the first quoted occurrence after it.
    let section = text.find("[access").unwrap_or(0);
    let at = |needle: String, message: String| {
        let off = text[section..].find(&needle).map(|i| section + i).unwrap_or(section);
        ConfigError::at(file, text, off, message)
    };
    let known: Vec<&str> = config.service.iter().map(|s| s.name.as_str()).collect();
    let mut errors = Vec::new();
    let mut check_services = |list: &[String], whose: &str| {
        for name in list.iter().filter(|n| *n != ALL_SERVICES && !known.contains(&n.as_str())) {
            errors.push(at(
                format!("\"{name}\""),
                format!("[access] {whose}: '{name}' is not a configured service (configured: {}; \"*\" means all)", known.join(", ")),
            ));
        }
    };
    check_services(&access.default, "default");
    for (person, list) in &access.people {
        check_services(list, &format!("people.{person}"));
    }
    for (group, g) in &access.groups {
        check_services(&g.services, &format!("groups.{group}.services"));
    }
    let valid = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let people = access.people.keys().map(|p| (p.as_str(), "people"));
    let members = access.groups.values().flat_map(|g| g.members.iter().map(|m| (m.as_str(), "groups.*.members")));
    for (name, whose) in people.chain(members).filter(|(n, _)| !valid(n)) {
        errors.push(at(
            name.to_string(),
            format!("[access] {whose}: {name:?} is not a person's name (letters, digits, '.', '_' or '-', as in `--as NAME`)"),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::super::{load_from, Source};

    fn load(access: &str) -> Result<super::Config, super::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let services = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/services.toml");
        let path = dir.path().join("logai.toml");
        std::fs::write(&path, format!("services_file = \"{services}\"\n\n{access}")).unwrap();
        load_from(Source::File(path))
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let c = load(include_str!("../../../config/examples/access.toml")).unwrap();
        let a = c.access.unwrap();
        assert_eq!(a.services_of("carol").unwrap(), ["gateway", "payments", "auth"]);
        assert_eq!(a.services_of("alice"), None);
        assert_eq!(a.services_of("zed").unwrap(), ["gateway", "payments"]);
    }

    #[test]
    fn unknown_services_and_bad_names_are_located() {
        let e = load("[access]\ndefault = [\"payments\"]\n[access.groups.sec]\nmembers = [\"carol\"]\nservices = [\"auth-old\"]\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (Some(7), Some(13)), "{e}");
        assert!(e.message.contains("groups.sec.services: 'auth-old' is not a configured service"), "{e}");
        let e = load("[access.people]\n\"bob smith\" = [\"auth\"]\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("\"bob smith\" is not a person's name"), "{e}");
        let e = load("[access]\ndefualt = []\n").unwrap_err();
        assert!(e.message.contains("unknown field `defualt`"), "{e}");
    }
}
