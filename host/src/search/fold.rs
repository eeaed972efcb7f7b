//! Lines folded into an aggregate instead of kept as matches: the engine
//! runs a plan as for a search and hands every selected line (in the
//! window, matching the pattern) to a [`Fold`], one per work item, merged
//! in file order. What a fold counts is the caller's business (`digest`).

use std::any::Any;

use super::scan::Emit;

/// One work item's aggregate. Its [`Emit::emit_line`] gets every selected
/// line with its effective stamp; context is never asked for.
pub trait Fold: Emit + Send + Any {
    /// This item's line numbers were counted from a relative origin (a
    /// chunk after the first): add `delta` (wrapping) to every one kept.
    fn rebase(&mut self, delta: u64);
    /// Fold in `later`, the next item's fold in file order.
    fn absorb(&mut self, later: Box<dyn Fold>);
    /// For the caller to take its own type back.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// Makes the folds of one run.
pub trait FoldSpec: Sync {
    /// A fresh fold for a work item of the plan's file `file`.
    fn start(&self, file: usize) -> Box<dyn Fold>;
}
