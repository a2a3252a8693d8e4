//! Loom models of the two lock-free protocols: every interleaving of a few threads is explored.
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p shm-proto --release --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shm_proto::ring::{Ring, RingCursor, SlotRead};
use shm_proto::seqlock::SeqLock;
use shm_proto::sync::{AtomicU64, Ordering::Relaxed};

struct Protected {
    lock: SeqLock,
    a: AtomicU64,
    b: AtomicU64,
}

#[test]
fn seqlock_readers_never_accept_a_torn_pair() {
    loom::model(|| {
        let shared = Arc::new(Protected { lock: SeqLock::new(), a: AtomicU64::new(0), b: AtomicU64::new(0) });
        let writers: Vec<_> = (1..=2u64)
            .map(|value| {
                let shared = shared.clone();
                thread::spawn(move || {
                    if let Ok(guard) = shared.lock.try_lock(value as u32, 1, |_| false) {
                        shared.a.store(value, Relaxed);
                        shared.b.store(value, Relaxed);
                        drop(guard);
                    }
                })
            })
            .collect();
        if let Some((a, b)) = shared.lock.try_read(2, || (shared.a.load(Relaxed), shared.b.load(Relaxed))) {
            assert_eq!(a, b, "a consistent read saw one write's pair");
        }
        for writer in writers {
            writer.join().unwrap();
        }
    });
}

#[test]
fn ring_slots_are_never_torn_and_nothing_is_unaccounted() {
    loom::model(|| {
        // One slot, two writers: they always collide on it, which is the interesting case.
        let ring = Arc::new(Ring::<1>::new());
        let writers: Vec<_> = (1..=2u64)
            .map(|w| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let key = w * 10;
                    ring.push(key, key as u16, false, w as u32, -(key as i32), key);
                })
            })
            .collect();
        let mut cursor = RingCursor::default();
        let mut accepted = 0;
        let check = |r: shm_proto::ring::Record| {
            assert_eq!(r.size, r.time_ns);
            assert_eq!(u64::from(r.hook), r.time_ns);
            assert_eq!(i64::from(r.code), -(r.time_ns as i64));
            assert_eq!(u64::from(r.thread), r.time_ns / 10);
        };
        cursor.drain(&ring, false, |r| {
            check(r);
            accepted += 1;
        });
        for writer in writers {
            writer.join().unwrap();
        }
        cursor.drain(&ring, false, |r| {
            check(r);
            accepted += 1;
        });
        assert_eq!(cursor.next, 2, "after the writers finished nothing is pending");
        assert_eq!(accepted + cursor.missed, 2);
        assert!(matches!(ring.read(1), SlotRead::Record(_) | SlotRead::Missed));
    });
}
