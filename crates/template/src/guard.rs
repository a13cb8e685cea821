//! A per-thread bound on recursion through nested values. Templates can build arbitrarily deep
//! values (`dict "k" $d` in a loop) or exponentially shared ones (`list $d $d` in a loop); Go's
//! growable stacks would print them for hours, ours would overflow, so the recursive printers,
//! serialisers and mergers stop descending past a depth and a per-call node budget.

use std::cell::Cell;

pub const MAX_VALUE_DEPTH: usize = 1000;
/// Nodes one top-level print/serialise/merge may visit.
pub const MAX_VISITS: usize = 2_000_000;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static VISITS: Cell<usize> = const { Cell::new(0) };
}

/// Held while one level is being processed.
pub struct Level(());

impl Drop for Level {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            n
        });
        if depth == 0 {
            VISITS.with(|v| v.set(0));
        }
    }
}

/// Bytes one print/serialise may produce before it stops (the render's output limit applies too).
pub const MAX_TEXT: usize = 64 << 20;

/// `None` when the nesting limit or the visit budget is reached.
pub fn enter() -> Option<Level> {
    let visits = VISITS.with(|v| {
        let n = v.get() + 1;
        v.set(n);
        n
    });
    DEPTH.with(|d| {
        if d.get() >= MAX_VALUE_DEPTH || visits > MAX_VISITS {
            None
        } else {
            d.set(d.get() + 1);
            Some(Level(()))
        }
    })
}

/// `None` also when the text being built has grown past [`MAX_TEXT`].
pub fn enter_text(len: usize) -> Option<Level> {
    if len > MAX_TEXT {
        return None;
    }
    enter()
}
