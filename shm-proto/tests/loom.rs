//! Loom models of the two lock-free protocols: every interleaving of a few threads is explored.
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p shm-proto --release --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shm_proto::clock::TickScale;
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
        // One shared slot, two writers: they always collide on it, which is the interesting case.
        let ring = Arc::new(Ring::<1, 1>::new());
        let writers: Vec<_> = (1..=2u64)
            .map(|w| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let key = w * 10;
                    ring.push(Ring::<1, 1>::lane_of(w as u32), key, key as u16, None, w as u32, -(key as i32), key);
                })
            })
            .collect();
        let mut cursor = RingCursor::default();
        let mut accepted = 0;
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
        assert_eq!(cursor.position(), 2, "after the writers finished nothing is pending");
        assert_eq!(accepted + cursor.missed, 2);
        let lane = &ring.lanes()[0];
        assert!(matches!(lane.read_with(1, &TickScale::NANOSECONDS), SlotRead::Record(_) | SlotRead::Missed));
    });
}

/// A lane's owner overwrites its only slot while a reader reads it: the reader never accepts a mix of two records,
/// and every record is either read or counted as missed. (The reader runs on a thread of its own: read from the
/// model's main thread, loom explored a single interleaving of this model, and a missing fence went unnoticed.)
#[test]
fn an_owned_lane_is_never_torn_and_nothing_is_unaccounted() {
    loom::model(|| {
        let ring = Arc::new(Ring::<2, 1>::new());
        let owner = {
            let ring = ring.clone();
            thread::spawn(move || {
                let lane = Ring::<2, 1>::lane_of(0);
                assert!(lane.owned);
                for w in 1..=2u64 {
                    let key = w * 10;
                    ring.push(lane, key, key as u16, None, w as u32, -(key as i32), key);
                }
            })
        };
        let reader = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut cursor = RingCursor::default();
                let mut accepted = 0;
                cursor.drain(&ring, false, |r| {
                    check(r);
                    accepted += 1;
                });
                (cursor, accepted)
            })
        };
        owner.join().unwrap();
        let (mut cursor, mut accepted) = reader.join().unwrap();
        cursor.drain(&ring, false, |r| {
            check(r);
            accepted += 1;
        });
        assert_eq!(cursor.position(), 2);
        assert_eq!(accepted + cursor.missed, 2);
    });
}

/// Every field of a model's record is derived from its key (`time_ns`), so a torn record fails.
fn check(r: shm_proto::ring::Record) {
    assert_eq!(r.size, r.time_ns);
    assert_eq!(u64::from(r.hook), r.time_ns);
    assert_eq!(i64::from(r.code), -(r.time_ns as i64));
    assert_eq!(u64::from(r.thread), r.time_ns / 10);
}
