//! Stress tests of the lock-free protocols with real threads. Each runs under a watchdog that fails the test if it
//! hangs; none asserts how long anything takes.

use shm_proto::sync::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use shm_proto::control::Writer;
use shm_proto::decide::{decide, Decision, Rng};
use shm_proto::layout::{Mode, Site};
use shm_proto::ring::{Record, Ring, RingCursor};
use shm_proto::seqlock::READ_TRIES;
use shm_proto::{Segment, Strategy};

/// Runs `body` on a thread; fails if it has not finished after a generous deadline (a hang, not slowness).
fn with_watchdog(name: &str, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(300)) {
        Ok(()) => worker.join().expect("test body"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            worker.join().expect("test body panicked");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no progress for 300 s (deadlock or livelock)"),
    }
}

/// Every field of a record is derived from (writer, i), so a torn record cannot pass the check.
fn write_record(ring: &Ring<4, 64>, writer: u32, i: u32) {
    let key = (u64::from(writer) << 32) | u64::from(i);
    // Writers 0–2 own a lane each; 3 and 4 share the last one.
    ring.push(
        Ring::<4, 64>::lane_of(writer),
        key,
        (i % 1000) as u16,
        i.is_multiple_of(2).then(|| Site::from_raw(i % 3)),
        writer,
        -(i as i32 % 100) - 1,
        !key,
    );
}

fn assert_intact(record: &Record) {
    let writer = (record.time_ns >> 32) as u32;
    let i = record.time_ns as u32;
    assert_eq!(record.thread, writer, "{record:?}");
    assert_eq!(record.size, !record.time_ns, "{record:?}");
    assert_eq!(record.hook, (i % 1000) as u16, "{record:?}");
    assert_eq!(record.injected, i.is_multiple_of(2), "{record:?}");
    assert_eq!(record.site, i.is_multiple_of(2).then(|| Site::from_raw(i % 3)), "{record:?}");
    assert_eq!(record.code, -(i as i32 % 100) - 1, "{record:?}");
}

#[test]
fn ring_readers_get_intact_records_in_order_and_count_exactly_what_they_missed() {
    with_watchdog("ring", || {
        const WRITERS: u32 = 5;
        const PER_WRITER: u32 = 200_000;
        let ring = Arc::new(Ring::<4, 64>::new());
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(WRITERS as usize + 1));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (ring, start) = (ring.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..PER_WRITER {
                        write_record(&ring, w, i);
                    }
                })
            })
            .collect();
        let reader = {
            let (ring, stop) = (ring.clone(), stop.clone());
            thread::spawn(move || {
                let mut cursor = RingCursor::default();
                let mut accepted = 0u64;
                let mut last_i = [None::<u32>; WRITERS as usize];
                let mut last_sequence = 0;
                let mut check = |record: Record| {
                    assert_intact(&record);
                    assert!(record.sequence > last_sequence, "sequences only grow: {record:?} after {last_sequence}");
                    last_sequence = record.sequence;
                    let writer = (record.time_ns >> 32) as usize;
                    let i = record.time_ns as u32;
                    assert!(last_i[writer].is_none_or(|last| last < i), "one writer's records arrive in order");
                    last_i[writer] = Some(i);
                    accepted += 1;
                };
                while !stop.load(Ordering::Acquire) {
                    cursor.drain(&ring, false, &mut check);
                }
                // Writers are done: everything still pending completes, so drain until caught up.
                while cursor.position() < ring.written() {
                    cursor.drain(&ring, false, &mut check);
                }
                (accepted, cursor.missed)
            })
        };
        start.wait();
        for writer in writers {
            writer.join().expect("writer");
        }
        stop.store(true, Ordering::Release);
        let (accepted, missed) = reader.join().expect("reader");
        let written = u64::from(WRITERS * PER_WRITER);
        assert_eq!(ring.written(), written);
        assert_eq!(accepted + missed, written, "accepted {accepted} + missed {missed}");
        assert!(accepted >= 64, "the reader got at least the final ring's worth of records");
    });
}

fn strategy_for_generation(generation: u32) -> Strategy {
    // Pattern length and pool are both derived from the generation; a mix of two updates is detectable.
    let len = (generation % 97 + 1) as usize;
    let mut s = Strategy::defaults(&[-(len as i32 % 25) - 1], |_| true);
    s.enabled = true;
    s.mode = Mode::Pattern;
    s.pattern = vec![true; len];
    s.seed = u64::from(generation);
    s
}

#[test]
fn readers_never_see_a_pattern_from_one_update_with_a_pool_from_another() {
    with_watchdog("seqlock", || {
        let seg: Arc<Segment> = Arc::from(Segment::new_zeroed());
        seg.control.publish(&seg.cursor, &seg.journal, &strategy_for_generation(0), |_| true).expect("publish");
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (seg, stop) = (seg.clone(), stop.clone());
            thread::spawn(move || {
                let mut generation = 1;
                while !stop.load(Ordering::Acquire) {
                    // Two writer "processes" alternate; the lock admits one at a time.
                    let pid = 10 + generation % 2;
                    let writer = Writer { pid, pid_ns: 1, start_ticks: 1 };
                    let next = strategy_for_generation(generation);
                    if seg.control.publish_as(&seg.cursor, &seg.journal, &next, false, &writer, |_| false).is_ok() {
                        generation += 1;
                    }
                }
                generation
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let seg = seg.clone();
                thread::spawn(move || {
                    let mut consistent_decisions = 0u64;
                    let mut snapshots = 0u64;
                    let mut rng = Rng::for_thread(0, r);
                    for index in 0..200_000u64 {
                        // The shim's way: decide inside a bounded seqlock read.
                        let read = seg.control.lock.try_read(READ_TRIES, || {
                            let len = seg.control.pattern_len.load(Ordering::Relaxed);
                            (decide(&seg.control, index, &mut rng), len)
                        });
                        if let Some((decision, len)) = read {
                            assert_eq!(
                                decision,
                                Decision::Fault { code: -(len as i32 % 25) - 1, delay_us: 0, site: Site::Post }
                            );
                            consistent_decisions += 1;
                        }
                        // The tool's way: a whole snapshot.
                        if index.is_multiple_of(64) {
                            if let Some(s) = seg.control.snapshot() {
                                assert_eq!(s.pool, vec![-(s.pattern.len() as i32 % 25) - 1]);
                                assert_eq!(s.seed as usize % 97 + 1, s.pattern.len());
                                snapshots += 1;
                            }
                        }
                    }
                    (consistent_decisions, snapshots)
                })
            })
            .collect();
        let results: Vec<_> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
        stop.store(true, Ordering::Release);
        let generations = writer.join().expect("writer");
        assert!(generations > 1, "the writer published updates while readers decided");
        assert!(results.iter().all(|&(decided, snapshots)| decided > 0 && snapshots > 0), "{results:?}");
    });
}
