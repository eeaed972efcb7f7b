//! Answers as callers see them: a page of an overflow, an answer with every
//! match inline for other sessions, and a shared answer cut to this
//! session's `max_results`.

use std::io;

use super::session::{self, JsonlWriter};
use super::{OverflowPage, OverflowRef, SearchCore, SearchError, SearchResponse};

impl SearchCore {
    /// A page of an overflow this session produced, by match index.
    pub fn read_overflow(&self, reference: &str, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
        self.overflows.read(reference, offset, limit)
    }

    /// The answer with every match inline (read back from its overflow
    /// when truncated), as another session can use it, or `None` when it
    /// holds more than `max_matches`. Overflow files belong to the session
    /// that wrote them; this is what a shared cache stores instead.
    pub fn shareable(&self, resp: &SearchResponse, max_matches: u64) -> Option<SearchResponse> {
        let Some(o) = &resp.overflow else { return Some(resp.clone()) };
        if o.total > max_matches {
            return None;
        }
        let mut all = Vec::with_capacity(o.total as usize);
        while (all.len() as u64) < o.total {
            let page = self.read_overflow(&o.reference, all.len() as u64, 10_000).ok()?;
            if page.matches.is_empty() {
                return None;
            }
            all.extend(page.matches);
        }
        Some(SearchResponse { matches: all, truncated: false, overflow: None, ..resp.clone() })
    }

    /// Present a shared answer (every match inline) to this session under
    /// its own `max_results`: the first ones inline, and when there are
    /// more, every match in an overflow of this session to page through.
    pub fn present(&self, mut resp: SearchResponse, max_results: u32) -> Result<SearchResponse, SearchError> {
        let max_results = max_results as usize;
        if resp.matches.len() <= max_results {
            return Ok(resp);
        }
        let reference = session::new_reference();
        let io_err = |e: io::Error| SearchError::internal(format!("cannot write the overflow file: {e}"));
        let mut w = JsonlWriter::create(self.session.path().join(format!("{reference}-0.jsonl"))).map_err(io_err)?;
        for m in &resp.matches {
            w.write(m).map_err(io_err)?;
        }
        let file = w.finish().map_err(io_err)?;
        let total = file.count;
        let overflow = session::Overflow { parts: vec![session::OverflowPart { first: 0, base: 0, file }], total };
        self.overflows.insert(reference.clone(), overflow);
        resp.matches.truncate(max_results);
        resp.truncated = true;
        resp.overflow = Some(OverflowRef { reference, total });
        Ok(resp)
    }
}
