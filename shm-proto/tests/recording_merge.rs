//! A property of the flight recorder: for any program of calls by any threads, read at any points, the merged
//! record stream a reader gets is exactly the program's calls in order, less the ones a lane overwrote before the
//! reader came by, and the reader's loss count is exactly those.

use proptest::prelude::*;
use shm_proto::layout::Site;
use shm_proto::ring::{Record, Ring, RingCursor};

const LANES: usize = 4;
const CAP: usize = 8;
type TestRing = Ring<LANES, CAP>;

#[derive(Debug, Clone)]
enum Step {
    /// Thread `thread` makes a call of `hook` that faulted with `code` (0: passed).
    Call { thread: u32, hook: u16, code: i32 },
    /// The reader drains.
    Read,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u32..7, 0u16..5, prop_oneof![Just(0), -20i32..0]).prop_map(|(thread, hook, code)| Step::Call { thread, hook, code }),
        1 => Just(Step::Read),
    ]
}

proptest! {
    #[test]
    fn the_merged_stream_is_the_program_less_exactly_what_was_overwritten(program in prop::collection::vec(step(), 0..200)) {
        // SAFETY: a Ring is all atomics and padding; all-zero is its documented initial state.
        let ring: Box<TestRing> = unsafe { Box::new_zeroed().assume_init() };
        let mut cursor = RingCursor::oldest(&ring);
        let mut got: Vec<Record> = Vec::new();
        // The model: each lane's records (program position), and how far the reader has read each lane.
        let mut lanes: Vec<Vec<u64>> = vec![Vec::new(); LANES];
        let mut read_upto = [0usize; LANES];
        let mut expected: Vec<u64> = Vec::new();
        let mut expected_missed = 0u64;
        let mut time = 0u64;
        for step in program.iter().chain([&Step::Read]) {
            match *step {
                Step::Call { thread, hook, code } => {
                    time += 1; // the program's order is its calls' time order
                    let lane = TestRing::lane_of(thread);
                    ring.push(lane, time, hook, (code != 0).then_some(Site::from_raw(u32::from(hook) % 3)), thread, code, time);
                    lanes[usize::from(lane.index)].push(time);
                }
                Step::Read => {
                    cursor.drain(&ring, false, |record| got.push(record));
                    let mut batch = Vec::new();
                    for (lane, records) in lanes.iter().enumerate() {
                        let kept_from = records.len().saturating_sub(CAP).max(read_upto[lane]);
                        expected_missed += (kept_from - read_upto[lane]) as u64;
                        batch.extend_from_slice(&records[kept_from..]);
                        read_upto[lane] = records.len();
                    }
                    batch.sort_unstable();
                    expected.extend(batch);
                }
            }
        }
        let times: Vec<u64> = got.iter().map(|r| r.time_ns).collect();
        prop_assert_eq!(&times, &expected, "the calls in program order, less the overwritten");
        prop_assert_eq!(cursor.missed, expected_missed, "exactly the overwritten ones are missed");
        prop_assert_eq!(got.len() as u64 + cursor.missed, ring.written());
        for record in &got {
            let Step::Call { thread, hook, code } = program.iter().filter(|s| matches!(s, Step::Call { .. })).nth(record.time_ns as usize - 1).unwrap().clone() else { unreachable!() };
            prop_assert_eq!((record.thread, record.hook, record.code, record.injected), (thread, hook, code, code != 0));
        }
        // Each record's sequence counts every call before it: with the stream read in time order, its position.
        let sequences: Vec<u64> = got.iter().map(|r| r.sequence).collect();
        prop_assert!(sequences.windows(2).all(|w| w[0] < w[1]), "sequences grow: {:?}", sequences);
        if let Some(last) = got.last() {
            prop_assert_eq!(last.sequence, ring.written(), "the newest record's sequence is the count written");
        }
    }
}
