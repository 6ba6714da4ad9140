//! Remembered lookups over re-exports that may form cycles (`export *` between TypeScript
//! barrels, glob `use`s between Rust modules), for the frontends' linkers.
//!
//! A lookup that runs back into one still in progress reads it as "nothing" (a cycle adds no
//! name), so its own answer is provisional: it holds only until that lookup ends, then it is
//! asked again. Answers that ran into no lookup in progress are complete and kept. Remembering a
//! provisional answer as complete made the answer for a module in a cycle depend on which module
//! was asked first (a publish through the second one was lost).
//!
//! A provisional answer is kept until the outermost lookup it ran into ends, so each is computed
//! once per outermost lookup and a dense cycle costs no more than one pass. It may also have read
//! a lookup nested deeper as nothing, one that ends sooner; reused in between, it can only hide a
//! name that other paths of the outermost lookup still find. So a name declared once gets the same
//! answer in any order; a name that two modules provide through re-exports (an ambiguity both
//! languages refuse) may not.

use std::hash::Hash;

use rustc_hash::FxHashMap as HashMap;

/// The lookups of one linker.
#[derive(Debug)]
pub struct CycleMemo<K, V> {
    /// Complete answers.
    done: HashMap<K, V>,
    /// Each lookup in progress, by its position in `lowest`.
    open: HashMap<K, usize>,
    /// For each lookup in progress (outermost first): the outermost enclosing lookup in progress
    /// it ran into, or `usize::MAX`.
    lowest: Vec<usize>,
    /// Answers that ran into a lookup in progress, with the position of the outermost one.
    provisional: HashMap<K, (V, usize)>,
}

impl<K, V> Default for CycleMemo<K, V> {
    fn default() -> Self {
        CycleMemo {
            done: HashMap::default(),
            open: HashMap::default(),
            lowest: Vec::new(),
            provisional: HashMap::default(),
        }
    }
}

/// What [`CycleMemo::begin`] says about a lookup.
#[derive(Debug)]
pub enum Begin<V> {
    /// Answered before (completely, or provisionally within the lookups in progress).
    Known(V),
    /// In progress: a cycle leads back to it. The caller answers "nothing".
    Cycle,
    /// Not answered: the caller computes it and hands the answer to [`CycleMemo::end`].
    Start(Started),
}

/// A lookup begun (its position among those in progress).
#[derive(Debug)]
#[must_use = "a started lookup must be ended"]
pub struct Started(usize);

impl<K: Hash + Eq + Clone, V: Clone> CycleMemo<K, V> {
    /// Begins the lookup of `key`.
    pub fn begin(&mut self, key: &K) -> Begin<V> {
        if let Some(v) = self.done.get(key) {
            return Begin::Known(v.clone());
        }
        if let Some((v, on)) = self.provisional.get(key) {
            // Reusing it depends on what it depended on.
            let (v, on) = (v.clone(), *on);
            self.ran_into(on);
            return Begin::Known(v);
        }
        if let Some(&at) = self.open.get(key) {
            self.ran_into(at);
            return Begin::Cycle;
        }
        let at = self.lowest.len();
        self.open.insert(key.clone(), at);
        self.lowest.push(usize::MAX);
        Begin::Start(Started(at))
    }

    /// Ends the lookup of `key` with its answer (the innermost lookup in progress).
    pub fn end(&mut self, key: K, Started(at): Started, value: V) {
        debug_assert_eq!(self.lowest.len(), at + 1, "lookups end innermost first");
        self.open.remove(&key);
        let lowest = self.lowest.pop().unwrap_or(usize::MAX);
        // Answers that depended on this lookup are asked again from now on.
        if !self.provisional.is_empty() {
            self.provisional.retain(|_, (_, on)| *on < at);
        }
        if lowest < at {
            self.ran_into(lowest);
            self.provisional.insert(key, (value, lowest));
        } else {
            self.done.insert(key, value);
        }
    }

    /// The innermost lookup in progress ran into the one at `at`.
    fn ran_into(&mut self, at: usize) {
        if let Some(lowest) = self.lowest.last_mut() {
            *lowest = (*lowest).min(at);
        }
    }

    /// Whether no lookup is in progress.
    pub fn idle(&self) -> bool {
        self.lowest.is_empty()
    }

    /// The complete answers (with no lookup in progress, every answer is).
    pub fn completed(&self) -> &HashMap<K, V> {
        &self.done
    }

    /// Replaces the complete answers (with no lookup in progress).
    pub fn restore(&mut self, done: HashMap<K, V>) {
        debug_assert!(self.idle());
        self.done = done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modules with re-exports of each other (a cycle) and of a module that declares `x`:
    /// the name `x` through each, by a depth-first lookup that stops at the first find.
    struct Graph {
        reexports: Vec<Vec<usize>>,
        declares: Vec<bool>,
    }

    impl Graph {
        fn lookup(&self, memo: &mut CycleMemo<usize, bool>, m: usize) -> bool {
            let started = match memo.begin(&m) {
                Begin::Known(v) => return v,
                Begin::Cycle => return false,
                Begin::Start(s) => s,
            };
            let found = self.declares[m] || self.reexports[m].iter().any(|&t| self.lookup(memo, t));
            memo.end(m, started, found);
            found
        }
    }

    #[test]
    fn every_module_of_a_cycle_gets_the_same_answer_in_any_order() {
        // 0 re-exports 1 then 3; 1 re-exports 2; 2 re-exports 0; 3 declares x.
        let g = Graph {
            reexports: vec![vec![1, 3], vec![2], vec![0], vec![]],
            declares: vec![false, false, false, true],
        };
        for first in 0..4 {
            let mut memo = CycleMemo::default();
            let order: Vec<usize> = (first..4).chain(0..first).collect();
            let answers: Vec<bool> = order.iter().map(|&m| g.lookup(&mut memo, m)).collect();
            assert!(answers.iter().all(|&a| a), "asking {order:?} first: {answers:?}");
            assert!(memo.idle());
            assert_eq!(memo.completed().len(), 4);
        }
        // Without the cycle's way out, nothing is found, and that is complete too.
        let g = Graph { reexports: vec![vec![1], vec![0]], declares: vec![false, false] };
        let mut memo = CycleMemo::default();
        assert!(!g.lookup(&mut memo, 0) && !g.lookup(&mut memo, 1));
        assert_eq!(memo.completed().len(), 2);
    }
}
