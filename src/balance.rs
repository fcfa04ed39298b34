//! Choosing a backend: round robin, per request, shared by every worker.
//!
//! One atomic counter serves all workers, so the rotation is exact across connections and
//! threads: 300 requests over 3 healthy backends give 100 each, however clients connect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::config::BackendSpec;

/// One upstream server and what the proxy has seen of it.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    /// Requests sent to it.
    pub requests: AtomicU64,
    /// Failed connects, resets and bad responses.
    pub failures: AtomicU64,
}

/// A per-request round-robin rotation over a fixed set of backends.
#[derive(Debug)]
pub struct RoundRobin {
    backends: Vec<Backend>,
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new(specs: &[BackendSpec]) -> RoundRobin {
        RoundRobin {
            backends: specs
                .iter()
                .map(|s| Backend {
                    name: s.name.clone(),
                    addr: s.addr,
                    requests: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    pub fn get(&self, index: usize) -> &Backend {
        &self.backends[index]
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The next backend in the rotation that is not in `exclude` (a bit per backend index, for
    /// the ones this request already failed on). `None` when every backend is excluded.
    pub fn pick(&self, exclude: u64) -> Option<usize> {
        let n = self.backends.len();
        for _ in 0..n {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
            if i >= 64 || exclude & (1 << i) == 0 {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(n: u16) -> RoundRobin {
        let specs: Vec<BackendSpec> = (0..n)
            .map(|i| BackendSpec {
                name: format!("b{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i)),
            })
            .collect();
        RoundRobin::new(&specs)
    }

    #[test]
    fn rotation_is_exact_across_threads() {
        let r = std::sync::Arc::new(rr(3));
        let counts: Vec<[usize; 3]> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut c = [0; 3];
                    for _ in 0..75 {
                        c[r.pick(0).unwrap()] += 1;
                    }
                    c
                })
            })
            .map(|h| h.join().unwrap())
            .collect();
        let total: Vec<usize> = (0..3).map(|i| counts.iter().map(|c| c[i]).sum()).collect();
        assert_eq!(total, vec![100, 100, 100]);
    }

    #[test]
    fn excluded_backends_are_skipped_and_all_excluded_is_none() {
        let r = rr(3);
        for _ in 0..6 {
            assert_ne!(r.pick(0b010), Some(1));
        }
        assert_eq!(r.pick(0b111), None);
    }
}
