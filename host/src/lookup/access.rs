//! What this session's person may search (`[access]`), checked by the host
//! before anything reads a log or the shared cache: a plugin cannot get
//! past it, and a cached answer is never served to someone who may not see
//! its service (the check comes before the cache lookup).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::config::Config;
use crate::coord::names::label;
use crate::coord::{Labels, MetricsSnapshot};
use crate::search::SearchError;

/// One person's services.
#[derive(Debug)]
pub struct Grant {
    person: String,
    /// `None`: every service.
    services: Option<Vec<String>>,
    /// Overflow references this session handed out, by service: a page is
    /// read only while its service is still this person's.
    overflows: Mutex<HashMap<String, String>>,
}

impl Grant {
    /// `person`'s services under the manifest's `[access]` (all without one).
    pub fn for_person(config: &Config, person: &str) -> Grant {
        let services = config.access.as_ref().and_then(|a| a.services_of(person));
        Grant { person: person.to_owned(), services, overflows: Mutex::new(HashMap::new()) }
    }

    pub fn person(&self) -> &str {
        &self.person
    }

    pub fn allows(&self, service: &str) -> bool {
        self.services.as_ref().is_none_or(|s| s.iter().any(|x| x == service))
    }

    /// A tool error naming the person and the service, when refused.
    pub fn check(&self, service: &str) -> Result<(), SearchError> {
        if self.allows(service) {
            return Ok(());
        }
        let mine = self.services.as_deref().unwrap_or_default();
        Err(SearchError::forbidden(
            "service",
            format!(
                "access denied: {} may not search service '{service}' ([access] in the manifest; {}'s services: {})",
                self.person,
                self.person,
                if mine.is_empty() { "none".to_string() } else { mine.join(", ") }
            ),
        ))
    }

    /// `snap` without the series of services this person may not search
    /// (those labelled `service` with another's name); the others stay.
    pub fn restrict(&self, mut snap: MetricsSnapshot) -> MetricsSnapshot {
        if self.services.is_none() {
            return snap;
        }
        let visible = |labels: &Labels| labels.iter().all(|(k, v)| k != label::SERVICE || self.allows(v));
        snap.counters.retain(|c| visible(&c.labels));
        snap.gauges.retain(|g| visible(&g.labels));
        snap.histograms.retain(|h| visible(&h.labels));
        snap
    }

    /// Remember which service an overflow reference belongs to.
    pub fn note_overflow(&self, reference: &str, service: &str) {
        self.overflows.lock().insert(reference.to_owned(), service.to_owned());
    }

    /// Refuse a page of an overflow of a service this person may not see.
    pub fn check_overflow(&self, reference: &str) -> Result<(), SearchError> {
        match self.overflows.lock().get(reference) {
            Some(service) => self.check(service),
            // Not one of this session's: the overflow store says so.
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::SearchErrorKind;

    fn config(access: &str) -> Config {
        let text = format!("[[service]]\nname = \"app\"\npaths = [\"a.log\"]\n[[service]]\nname = \"auth\"\npaths = [\"b.log\"]\n{access}");
        crate::config::parse(&text, "t.toml", std::path::Path::new("/")).unwrap()
    }

    #[test]
    fn people_and_groups_add_to_the_default() {
        let c = config(
            "[access]\ndefault = [\"app\"]\n[access.people]\nalice = [\"*\"]\n[access.groups.security]\nmembers = [\"carol\"]\nservices = [\"auth\"]\n",
        );
        let bob = Grant::for_person(&c, "bob");
        assert!(bob.allows("app") && !bob.allows("auth"));
        let e = bob.check("auth").unwrap_err();
        assert_eq!(e.kind, SearchErrorKind::Forbidden);
        assert!(e.message.contains("bob may not search service 'auth'"), "{}", e.message);
        assert!(Grant::for_person(&c, "alice").allows("auth"));
        assert!(Grant::for_person(&c, "carol").allows("auth"));
        // No [access]: everyone, everything.
        assert!(Grant::for_person(&config(""), "bob").allows("auth"));
    }

    #[test]
    fn overflows_follow_their_service() {
        let c = config("[access]\ndefault = [\"app\"]\n");
        let g = Grant::for_person(&c, "bob");
        g.note_overflow("r1", "auth");
        g.note_overflow("r2", "app");
        assert!(g.check_overflow("r1").is_err());
        assert!(g.check_overflow("r2").is_ok());
    }

    #[test]
    fn metrics_hold_only_the_persons_services() {
        use crate::coord::{names, Metrics};
        let m = Metrics::new();
        for svc in ["app", "auth"] {
            m.incr(names::SEARCHES_TOTAL, &[(label::SERVICE, svc), (label::CACHED, "false")], 1.0);
            m.observe(names::SEARCH_DURATION_MS, &[(label::SERVICE, svc)], 3.0);
            m.gauge_set(names::PERMITS_IN_USE, &[(label::SCOPE, "service"), (label::SERVICE, svc)], 1.0);
        }
        m.incr(names::ERRORS_TOTAL, &[(label::KIND, "busy")], 1.0);
        let snap = m.local_snapshot();
        let services = |s: &MetricsSnapshot| {
            let mut seen: Vec<String> = (s.counters.iter().map(|c| &c.labels))
                .chain(s.gauges.iter().map(|g| &g.labels))
                .chain(s.histograms.iter().map(|h| &h.labels))
                .flat_map(|l| l.iter().filter(|(k, _)| k == label::SERVICE).map(|(_, v)| v.clone()))
                .collect();
            seen.sort();
            seen.dedup();
            seen
        };
        let c = config("[access]\ndefault = [\"app\"]\n[access.people]\nalice = [\"*\"]\n");
        let bob = Grant::for_person(&c, "bob").restrict(snap.clone());
        assert_eq!(services(&bob), ["app"]);
        assert_eq!((bob.counters.len(), bob.histograms.len(), bob.gauges.len()), (2, 1, 1), "{bob:?}");
        assert!(bob.counters.iter().any(|c| c.name == names::ERRORS_TOTAL), "series without a service stay");
        assert_eq!(services(&Grant::for_person(&c, "alice").restrict(snap.clone())), ["app", "auth"]);
        assert_eq!(services(&Grant::for_person(&c, "nobody").restrict(snap)), ["app"]);
    }
}
