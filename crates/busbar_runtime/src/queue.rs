//! The deliveries a subscription is owed, in memory: which are due, which wait for their
//! backoff, and which wait behind the head of their ordering key. The store holds the same
//! deliveries durably; this is the schedule the dispatcher reads without asking the disk.
//! Loaded from the store when the broker opens, then kept in step with it: a publish adds to it
//! once committed, a settlement changes it before it is queued to the store.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::store::StoredMessage;

/// A message body held in memory; it gives its bytes back to the budget when the last
/// subscription lets go of it.
#[derive(Debug)]
pub(crate) struct Body {
    pub message: StoredMessage,
    budget: Arc<AtomicUsize>,
}

impl Body {
    /// `message` in memory, or `None` when the bodies held already fill `limit` bytes (the
    /// dispatcher then reads it back from the store when it is due).
    pub fn hold(
        message: StoredMessage,
        budget: &Arc<AtomicUsize>,
        limit: usize,
    ) -> Option<Arc<Body>> {
        let size = message.data.len() + 128;
        let held = budget.fetch_add(size, Ordering::Relaxed);
        if held + size > limit {
            budget.fetch_sub(size, Ordering::Relaxed);
            return None;
        }
        Some(Arc::new(Body { message, budget: budget.clone() }))
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.message.data.len() + 128, Ordering::Relaxed);
    }
}

/// One delivery owed.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The message id.
    pub id: Arc<str>,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Not before this time (ms).
    pub next_at: i64,
    pub ordering_key: Option<Arc<str>>,
    pub published_at: i64,
    pub body: Option<Arc<Body>>,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    entries: HashMap<i64, Entry>,
    /// (next_at, seq) of every entry that may start when its time comes: not in flight, and
    /// the head of its ordering key.
    due: BTreeSet<(i64, i64)>,
    /// Per ordering key, its entries in publish order; only the front one is ever due or in
    /// flight.
    keys: HashMap<Arc<str>, VecDeque<i64>>,
    in_flight: BTreeSet<i64>,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a delivery (a new message, one loaded at open, or a released dead letter).
    pub fn push(&mut self, seq: i64, entry: Entry) {
        if self.entries.contains_key(&seq) {
            return;
        }
        let head = match &entry.ordering_key {
            Some(key) => {
                let queue = self.keys.entry(key.clone()).or_default();
                // Released dead letters can be older than what waits: keep publish order.
                let at = queue.partition_point(|s| *s < seq);
                if at == 0 && !queue.is_empty() {
                    // It goes before the current head: the head steps back unless in flight.
                    let old = queue[0];
                    if !self.in_flight.contains(&old) {
                        if let Some(e) = self.entries.get(&old) {
                            self.due.remove(&(e.next_at, old));
                        }
                        queue.insert(0, seq);
                        true
                    } else {
                        queue.insert(1, seq);
                        false
                    }
                } else {
                    queue.insert(at, seq);
                    at == 0
                }
            }
            None => true,
        };
        if head {
            self.due.insert((entry.next_at, seq));
        }
        self.entries.insert(seq, entry);
    }

    /// Up to `max` deliveries due at `now`, in (due time, publish) order; they are in flight
    /// until settled.
    pub fn take_due(&mut self, now: i64, max: usize) -> Vec<(i64, Entry)> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(&(at, seq)) = self.due.first() else { break };
            if at > now {
                break;
            }
            self.due.pop_first();
            if let Some(e) = self.entries.get(&seq) {
                self.in_flight.insert(seq);
                out.push((seq, e.clone()));
            }
        }
        out
    }

    /// When the next delivery comes due, if any waits.
    pub fn next_due(&self) -> Option<i64> {
        self.due.first().map(|(at, _)| *at)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The delivery is done (acknowledged or dead-lettered): forget it, and let the next of
    /// its ordering key come due.
    pub fn remove(&mut self, seq: i64) -> Option<Entry> {
        self.in_flight.remove(&seq);
        let entry = self.entries.remove(&seq)?;
        self.due.remove(&(entry.next_at, seq));
        if let Some(key) = &entry.ordering_key
            && let Some(queue) = self.keys.get_mut(key)
        {
            let was_head = queue.front() == Some(&seq);
            queue.retain(|s| *s != seq);
            if queue.is_empty() {
                self.keys.remove(key);
            } else if was_head {
                let next = queue[0];
                if let Some(e) = self.entries.get(&next) {
                    self.due.insert((e.next_at, next));
                }
            }
        }
        Some(entry)
    }

    /// The delivery failed and will be tried again at `next_at`; it stays the head of its key.
    pub fn retry(&mut self, seq: i64, attempts: u32, next_at: i64) {
        self.in_flight.remove(&seq);
        if let Some(e) = self.entries.get_mut(&seq) {
            e.attempts = attempts;
            e.next_at = next_at;
            self.due.insert((next_at, seq));
        }
    }

    /// The deliveries (not in flight) of messages published before `cutoff`, removed.
    pub fn expire(&mut self, cutoff: i64) -> Vec<(i64, Entry)> {
        let old: Vec<i64> = self
            .entries
            .iter()
            .filter(|(seq, e)| e.published_at < cutoff && !self.in_flight.contains(seq))
            .map(|(seq, _)| *seq)
            .collect();
        let mut out: Vec<(i64, Entry)> =
            old.into_iter().filter_map(|seq| self.remove(seq).map(|e| (seq, e))).collect();
        out.sort_by_key(|(seq, _)| *seq);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(next_at: i64, key: Option<&str>) -> Entry {
        Entry {
            id: Arc::from("m"),
            attempts: 0,
            next_at,
            ordering_key: key.map(Arc::from),
            published_at: 0,
            body: None,
        }
    }

    fn seqs(v: &[(i64, Entry)]) -> Vec<i64> {
        v.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn keys_release_their_next_only_when_the_head_is_done() {
        let mut q = Queue::default();
        q.push(1, entry(0, Some("a")));
        q.push(2, entry(0, Some("a")));
        q.push(3, entry(0, Some("b")));
        q.push(4, entry(0, None));
        assert_eq!(seqs(&q.take_due(0, 10)), [1, 3, 4]);
        assert!(q.take_due(0, 10).is_empty(), "2 waits behind 1");
        q.retry(1, 1, 50);
        assert!(q.take_due(10, 10).is_empty(), "1 waits for its backoff, 2 behind it");
        assert_eq!(seqs(&q.take_due(50, 10)), [1]);
        q.remove(1);
        assert_eq!(seqs(&q.take_due(50, 10)), [2]);
        q.remove(2);
        q.remove(3);
        q.remove(4);
        assert_eq!(q.len(), 0);
        assert!(q.keys.is_empty() && q.due.is_empty() && q.in_flight.is_empty());
    }

    #[test]
    fn a_released_older_message_goes_back_before_its_key() {
        let mut q = Queue::default();
        q.push(5, entry(0, Some("a")));
        q.push(2, entry(0, Some("a")));
        assert_eq!(seqs(&q.take_due(0, 10)), [2]);
        q.remove(2);
        assert_eq!(seqs(&q.take_due(0, 10)), [5]);
        // While 5 is in flight, an older one waits behind it rather than running beside it.
        q.push(1, entry(0, Some("a")));
        assert!(q.take_due(0, 10).is_empty());
        q.remove(5);
        assert_eq!(seqs(&q.take_due(0, 10)), [1]);
    }

    #[test]
    fn expiry_takes_old_waiting_deliveries_but_not_those_in_flight() {
        let mut q = Queue::default();
        for seq in 1..=3 {
            q.push(seq, Entry { published_at: seq * 10, ..entry(0, Some("k")) });
        }
        assert_eq!(seqs(&q.take_due(0, 1)), [1]);
        assert_eq!(seqs(&q.expire(25)), [2], "1 is in flight; 3 is younger");
        q.remove(1);
        assert_eq!(seqs(&q.take_due(0, 10)), [3]);
    }

    #[test]
    fn the_budget_bounds_bodies_in_memory() {
        let budget = Arc::new(AtomicUsize::new(0));
        let message = |n: usize| StoredMessage {
            id: n.to_string(),
            topic: "t".into(),
            data: vec![0; 1000],
            content_type: crate::JSON.into(),
            attributes: Default::default(),
            published_at_ms: 0,
        };
        let a = Body::hold(message(1), &budget, 2500).unwrap();
        let b = Body::hold(message(2), &budget, 2500).unwrap();
        assert!(Body::hold(message(3), &budget, 2500).is_none());
        drop(a);
        assert!(Body::hold(message(4), &budget, 2500).is_some());
        drop(b);
        assert_eq!(budget.load(Ordering::Relaxed), 0);
    }
}
