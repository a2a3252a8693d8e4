//! The control block against writers that die mid-change and values no faultline writes, and every reader of a
//! segment against arbitrary bytes (property-based fuzzing; CI runs a bounded number of cases).

use proptest::prelude::*;
use shm_proto::control::{ReadError, Writer};
use shm_proto::layout::{Control, Mode, ABI_VERSION, MAGIC};
use shm_proto::segment::SEGMENT_SIZE;
use shm_proto::{Segment, Strategy};

fn strategy(pool: &[i32], ppm: u32) -> Strategy {
    let mut s = Strategy::defaults(pool, |_| true);
    s.enabled = true;
    s.probability_ppm = ppm;
    s
}

fn dead_writer() -> Writer {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    Writer { pid, pid_ns: shm_proto::process::own_pid_ns(), start_ticks: 1 }
}

#[test]
fn a_writer_killed_mid_change_never_wedges_the_segment() {
    let seg = Segment::new_zeroed();
    let before = strategy(&[-3, -6], 250_000);
    seg.control.publish(&seg.cursor, &seg.journal, &before, |_| true).unwrap();
    let mut next = strategy(&[-20], 0);
    next.enabled = false;
    next.mode = Mode::Pattern;
    next.pattern = vec![true, false];
    seg.control.publish_killed_midway(&seg.journal, &next, &dead_writer());

    assert_eq!(seg.control.snapshot(), None, "the shim sees an unstable block and passes calls");
    assert_eq!(seg.read_strategy(), Ok(before.clone()), "tools read the last consistent settings");
    assert!(seg.interrupted_writer().is_some(), "the dead writer is named");

    assert_eq!(seg.repair(), Ok(true), "a reader takes over and republishes");
    assert_eq!(seg.control.snapshot(), Some(before.clone()), "the shim sees the settings before the change again");
    assert_eq!(seg.interrupted_writer(), None);

    // And the next ordinary change works (it would take over the dead writer's lock itself, too).
    seg.control.publish_killed_midway(&seg.journal, &next, &dead_writer());
    let after = strategy(&[-6], 10_000);
    seg.publish(&after).expect("a dead writer's lock is taken over");
    assert_eq!(seg.control.snapshot(), Some(after));
}

#[test]
fn a_live_writer_is_not_taken_over() {
    let seg = Segment::new_zeroed();
    seg.control.publish(&seg.cursor, &seg.journal, &strategy(&[-3], 1), |_| true).unwrap();
    let me = Writer::this_process();
    let other = Writer { pid: 1, start_ticks: shm_proto::process::start_time_ticks("1").unwrap_or(0), ..me };
    seg.control.publish_killed_midway(&seg.journal, &strategy(&[-6], 2), &other);
    // pid 1 runs in our namespace: its change is in progress, not abandoned.
    assert_eq!(seg.interrupted_writer(), None);
    assert!(seg.publish(&strategy(&[-20], 3)).is_err(), "busy while its holder lives");
}

fn control_mut(seg: &Segment) -> &Control {
    &seg.control
}

#[test]
fn values_no_faultline_writes_are_reported_corrupt() {
    use std::sync::atomic::Ordering::Relaxed;
    type Corruption = fn(&Control);
    let cases: [(&str, Corruption); 7] = [
        ("probability", |c| c.probability_ppm.store(u32::MAX, Relaxed)),
        ("mode", |c| c.mode.store(7, Relaxed)),
        ("delay mode", |c| c.delay_mode.store(9, Relaxed)),
        ("site", |c| c.site.store(7, Relaxed)),
        ("error pool", |c| c.pool[0].store(0, Relaxed)),
        ("error pool length", |c| c.pool_len.store(1000, Relaxed)),
        ("enabled", |c| c.enabled.store(2, Relaxed)),
    ];
    for (what, corrupt) in cases {
        let seg = Segment::new_zeroed();
        seg.control.publish(&seg.cursor, &seg.journal, &strategy(&[-3], 5), |_| true).unwrap();
        corrupt(control_mut(&seg));
        match seg.read_strategy() {
            Err(ReadError::Corrupt(why)) => assert!(!why.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// A file of `len` bytes: random, but starting like a real segment for the first `real_prefix` header words.
fn hostile_bytes(len: usize, seed: u64, real_prefix: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let mut state = seed;
    for b in bytes.iter_mut() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *b = (state >> 56) as u8;
    }
    let prefix: Vec<u8> = [
        MAGIC.to_le_bytes().to_vec(),
        ABI_VERSION.to_le_bytes().to_vec(),
        1u32.to_le_bytes().to_vec(),
        (SEGMENT_SIZE as u64).to_le_bytes().to_vec(),
    ]
    .concat();
    let keep = [0, 8, 16, 24][real_prefix].min(len);
    bytes[..keep].copy_from_slice(&prefix[..keep]);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Everything a reader parses from a segment file — header, names, strategy, journal, counters, ring — on
    /// random contents: no panic, no out-of-bounds read, and a strategy is either valid or reported corrupt.
    #[test]
    fn every_reader_survives_random_segment_contents(seed: u64, real_prefix in 0usize..4, sparse in any::<bool>()) {
        let mut bytes = hostile_bytes(SEGMENT_SIZE, seed, real_prefix);
        if sparse {
            // Mostly zero, as a real file is, with random words sprinkled in.
            for (i, b) in bytes.iter_mut().enumerate().skip(24) {
                if !(i as u64).wrapping_mul(seed | 1).is_multiple_of(97) {
                    *b = 0;
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.ucx.1");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(map) = shm_proto::SegmentMap::attach(&path, shm_proto::Access::ReadOnly, Default::default()) {
            let seg = map.segment();
            let _ = seg.header.exe_name();
            let _ = seg.header.hook_names();
            let _ = seg.kind();
            let _ = seg.default_strategy();
            match seg.read_strategy() {
                Ok(s) => {
                    prop_assert!(s.probability_ppm <= 1_000_000);
                    prop_assert!(!s.pool.is_empty() && !s.pool.contains(&0));
                }
                Err(ReadError::Corrupt(_)) | Err(ReadError::Busy) => {}
            }
            let _ = seg.interrupted_writer();
            let _ = seg.hook_totals(usize::MAX);
            let mut cursor = shm_proto::ring::RingCursor::oldest(&seg.ring);
            cursor.drain(&seg.ring, true, |_| {});
            let _ = shm_proto::segment::is_alive(&map, 1);
        }
    }
}

#[test]
fn a_view_of_a_file_truncated_under_it_reads_zeros_instead_of_dying() {
    let mut bytes = vec![0u8; SEGMENT_SIZE];
    bytes[..24].copy_from_slice(&hostile_bytes(24, 0, 3));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faultline.ucx.1");
    std::fs::write(&path, &bytes).unwrap();
    let map = shm_proto::SegmentMap::attach(&path, shm_proto::Access::ReadOnly, Default::default()).expect("valid");
    assert_eq!(map.truncations_survived(), 0);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    // Without the guard this read is SIGBUS.
    let seg = map.segment();
    assert_eq!(seg.header.magic.load(std::sync::atomic::Ordering::Acquire), 0, "the view now reads zeros");
    assert_eq!(seg.header.exe_name(), "");
    assert_eq!(map.truncations_survived(), 1);
    let mut cursor = shm_proto::ring::RingCursor::oldest(&seg.ring);
    cursor.drain(&seg.ring, true, |_| {});
}
