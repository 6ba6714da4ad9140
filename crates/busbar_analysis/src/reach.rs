//! Who runs what: for a publish in shared code, the services that run it, each with the
//! imports that lead from the service's code to it.
//!
//! A breadth-first search over the frontend's [`CodeGraph`] from the code holding the publish
//! to the code that runs it: the first node in a file of a service ends a chain, and that
//! service is granted; nodes in shared files pass reachability on.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_diagnostics::Span;

use crate::facts::{ByteRange, CodeGraph, File};
use crate::services::Services;

/// A service reaching a shared publish, with the imports that lead to it.
pub(crate) type Grant = (String, Vec<Span>);

pub(crate) struct Reach<'a> {
    files: &'a [File],
    code: &'a CodeGraph,
    services: &'a Services,
    cache: HashMap<u32, Vec<Grant>>,
}

impl<'a> Reach<'a> {
    pub fn new(files: &'a [File], code: &'a CodeGraph, services: &'a Services) -> Self {
        Reach { files, code, services, cache: HashMap::default() }
    }

    /// The services that run `node`, in name order.
    pub fn services_reaching(&mut self, node: u32) -> &[Grant] {
        if !self.cache.contains_key(&node) {
            let found = self.search(node);
            self.cache.insert(node, found);
        }
        self.cache.get(&node).map_or(&[], Vec::as_slice)
    }

    fn search(&self, start: u32) -> Vec<Grant> {
        let nodes = &self.code.nodes;
        let mut found: BTreeMap<String, Vec<(usize, ByteRange)>> = BTreeMap::new();
        let mut visited: HashSet<u32> = HashSet::default();
        let mut queue: VecDeque<(u32, Vec<(usize, ByteRange)>)> = VecDeque::new();
        if (start as usize) < nodes.len() {
            visited.insert(start);
            queue.push_back((start, Vec::new()));
        }
        while let Some((node, chain)) = queue.pop_front() {
            for runner in &nodes[node as usize].runners {
                let Some(next) = nodes.get(runner.node as usize) else { continue };
                let next_chain = match runner.via {
                    Some(via) => {
                        std::iter::once((next.file, via)).chain(chain.iter().copied()).collect()
                    }
                    None => chain.clone(),
                };
                match self.services.name_of(next.file) {
                    Some(service) => {
                        found.entry(service.to_string()).or_insert(next_chain);
                    }
                    None => {
                        if visited.insert(runner.node) {
                            queue.push_back((runner.node, next_chain));
                        }
                    }
                }
            }
        }
        found
            .into_iter()
            .map(|(service, chain)| {
                let spans =
                    chain.into_iter().map(|(f, r)| self.files[f].source.span(r.lo, r.hi)).collect();
                (service, spans)
            })
            .collect()
    }
}
