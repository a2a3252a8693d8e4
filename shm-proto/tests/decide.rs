//! Property tests of the decision engine against the brief's semantics, through the real control block.

use proptest::prelude::*;
use shm_proto::decide::{decide, Decision, Rng};
use shm_proto::layout::{DelayMode, Mode, Site, PATTERN_CAP};
use shm_proto::{Segment, Strategy, ThreadCtx};

fn strategy(mode: Mode, pool: &[i32]) -> Strategy {
    let mut s = Strategy::defaults(pool, |_| true);
    s.enabled = true;
    s.mode = mode;
    s
}

fn segment_with(s: &Strategy) -> Box<Segment> {
    let seg = Segment::new_zeroed();
    seg.control.publish(&seg.cursor, &seg.journal, s, |_| true).expect("valid strategy");
    seg
}

/// The brief's pattern semantics, written the obvious way: call `index` (0-based) after `skip` passes looks up
/// `pattern[k % len]`; each X takes the next pool code in order, cycling.
fn expected_pattern(pattern: &[bool], pool: &[i32], skip: u64, index: u64) -> Decision {
    if index < skip {
        return Decision::Pass;
    }
    let k = index - skip;
    let len = pattern.len() as u64;
    if !pattern[(k % len) as usize] {
        return Decision::Pass;
    }
    let x_before = (0..k).filter(|&j| pattern[(j % len) as usize]).count();
    Decision::Fault { code: pool[x_before % pool.len()], delay_us: 0, site: Site::Post }
}

#[test]
fn the_briefs_example_faults_calls_1_6_9_14_17_22() {
    let mut s = strategy(Mode::Pattern, &[-3, -6, -20]);
    s.pattern = shm_proto::config::parse_pattern("XOOOOXOO").unwrap();
    let seg = segment_with(&s);
    let mut rng = Rng::for_thread(1, 0);
    let faulted: Vec<(u64, i32)> = (0..24)
        .filter_map(|i| match decide(&seg.control, i, &mut rng) {
            Decision::Fault { code, .. } => Some((i + 1, code)),
            _ => None,
        })
        .collect();
    assert_eq!(faulted, vec![(1, -3), (6, -6), (9, -20), (14, -3), (17, -6), (22, -20)]);
}

#[test]
fn a_full_length_pattern_is_looked_up_in_constant_time_across_word_boundaries() {
    let mut s = strategy(Mode::Pattern, &[-3, -6, -20, -25, -4]);
    s.pattern = (0..PATTERN_CAP).map(|p| p % 7 == 3 || p % 64 == 63 || p == PATTERN_CAP - 1).collect();
    let seg = segment_with(&s);
    let mut rng = Rng::for_thread(1, 0);
    let mut x_seen = 0usize;
    for index in 0..(PATTERN_CAP as u64 + 500) {
        let is_x = s.pattern[(index % PATTERN_CAP as u64) as usize];
        let want = if is_x {
            Decision::Fault { code: s.pool[x_seen % s.pool.len()], delay_us: 0, site: Site::Post }
        } else {
            Decision::Pass
        };
        assert_eq!(decide(&seg.control, index, &mut rng), want, "call {index}");
        x_seen += usize::from(is_x);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn pattern_positions_and_code_cycling(
        pattern in prop::collection::vec(any::<bool>(), 1..300),
        pool in prop::collection::vec(-25i32..=-1, 1..6),
        skip in 0u64..40,
    ) {
        let mut s = strategy(Mode::Pattern, &pool);
        s.pattern = pattern.clone();
        s.skip = skip;
        let seg = segment_with(&s);
        let mut rng = Rng::for_thread(9, 0);
        for index in 0..(skip + 3 * pattern.len() as u64 + 7) {
            prop_assert_eq!(decide(&seg.control, index, &mut rng), expected_pattern(&pattern, &pool, skip, index));
        }
    }

    #[test]
    fn replay_is_exact_once_or_looping(program in prop::collection::vec(prop_oneof![Just(0i32), -25i32..=-1], 1..200), looping: bool) {
        let mut s = strategy(Mode::Replay, &[-3]);
        s.replay = program.clone();
        s.replay_loop = looping;
        s.skip = 5; // replay overrides skip and limit
        s.limit = 1;
        let seg = segment_with(&s);
        let mut rng = Rng::for_thread(9, 0);
        let len = program.len() as u64;
        for index in 0..(3 * len) {
            let code = if looping || index < len { program[(index % len) as usize] } else { 0 };
            let want = if code == 0 { Decision::Pass } else { Decision::Fault { code, delay_us: 0, site: Site::Post } };
            prop_assert_eq!(decide(&seg.control, index, &mut rng), want);
        }
    }

    #[test]
    fn random_mode_is_reproducible_from_seed_and_thread(seed: u64, ordinal in 0u32..8) {
        let mut s = strategy(Mode::Random, &[-3, -6, -20]);
        s.probability_ppm = 300_000;
        s.seed = seed;
        let seg = segment_with(&s);
        let run = || {
            let mut rng = Rng::for_thread(seed, ordinal);
            (0..200).map(|i| decide(&seg.control, i, &mut rng)).collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }
}

/// Binomial bounds: 6 standard deviations, so a correct engine fails with probability ~1e-9 per check.
fn within_bounds(count: u64, n: u64, p: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (count as f64 - mean).abs() <= 6.0 * sd + 1.0
}

#[test]
fn random_probability_and_code_choice_are_within_statistical_bounds_for_several_seeds() {
    let pool = [-3, -6, -20, -25];
    for seed in [0u64, 1, 42, 0xDEAD_BEEF, u64::MAX] {
        for ppm in [0u32, 1_000, 300_000, 500_000, 990_000, 1_000_000] {
            let mut s = strategy(Mode::Random, &pool);
            s.probability_ppm = ppm;
            s.seed = seed;
            let seg = segment_with(&s);
            let mut rng = Rng::for_thread(seed, 0);
            let n = 20_000u64;
            let mut per_code = [0u64; 4];
            for i in 0..n {
                if let Decision::Fault { code, .. } = decide(&seg.control, i, &mut rng) {
                    per_code[pool.iter().position(|&c| c == code).expect("a pool code")] += 1;
                }
            }
            let faults: u64 = per_code.iter().sum();
            let p = f64::from(ppm) / 1e6;
            assert!(within_bounds(faults, n, p), "seed {seed} ppm {ppm}: {faults} faults of {n}");
            if ppm == 0 {
                assert_eq!(faults, 0);
            }
            if ppm == 1_000_000 {
                assert_eq!(faults, n);
            }
            for (code, &count) in pool.iter().zip(&per_code) {
                assert!(
                    within_bounds(count, faults, 0.25),
                    "seed {seed} ppm {ppm}: code {code} drawn {count} of {faults}"
                );
            }
        }
    }
}

#[test]
fn skip_and_limit_are_exact_through_the_per_call_path() {
    for (skip, limit) in [(0u64, 0u64), (3, 0), (0, 4), (7, 5), (10, 1)] {
        let mut s = strategy(Mode::Pattern, &[-3]);
        s.pattern = vec![true, false];
        s.skip = skip;
        s.limit = limit;
        let seg = segment_with(&s);
        let mut ctx = ThreadCtx::register(&seg, 1);
        let faulted_calls: Vec<u64> =
            (1..=60u64).filter(|_| matches!(seg.on_call(0, &mut ctx, 0), Decision::Fault { .. })).collect();
        let mut want: Vec<u64> = (skip + 1..=60).step_by(2).collect();
        if limit > 0 {
            want.truncate(limit as usize);
        }
        assert_eq!(faulted_calls, want, "skip {skip} limit {limit}");
        assert_eq!(seg.hook_totals(0), (60, want.len() as u64), "counters agree with the decisions");
    }
}

#[test]
fn delay_applies_before_or_instead_of_a_fault() {
    let mut s = strategy(Mode::Pattern, &[-6]);
    s.pattern = vec![true];
    s.delay_us = 250;
    s.delay_mode = DelayMode::BeforeFault;
    let seg = segment_with(&s);
    let mut rng = Rng::for_thread(0, 0);
    assert_eq!(decide(&seg.control, 0, &mut rng), Decision::Fault { code: -6, delay_us: 250, site: Site::Post });
    s.delay_mode = DelayMode::InsteadOfFault;
    let seg = segment_with(&s);
    assert_eq!(decide(&seg.control, 0, &mut rng), Decision::Delay { us: 250 });
}

#[test]
fn a_fault_carries_the_site_of_the_same_read_in_every_mode() {
    for site in Site::ALL {
        let mut s = strategy(Mode::Pattern, &[-6]);
        s.pattern = vec![true];
        s.site = site;
        let mut rng = Rng::for_thread(0, 0);
        assert_eq!(decide(&segment_with(&s).control, 0, &mut rng), Decision::Fault { code: -6, delay_us: 0, site });
        s.mode = Mode::Replay;
        s.replay = vec![-4];
        assert_eq!(decide(&segment_with(&s).control, 0, &mut rng), Decision::Fault { code: -4, delay_us: 0, site });
        s.mode = Mode::Random;
        s.probability_ppm = 1_000_000;
        assert_eq!(decide(&segment_with(&s).control, 0, &mut rng), Decision::Fault { code: -6, delay_us: 0, site });
    }
}

#[test]
fn unarmed_hooks_and_a_disarmed_mask_pass_without_advancing_the_pattern() {
    let mut s = strategy(Mode::Pattern, &[-3]);
    s.pattern = vec![true, false];
    s.arm_mask = [0b01, 0];
    let seg = segment_with(&s);
    let mut ctx = ThreadCtx::register(&seg, 1);
    assert!(matches!(seg.on_call(0, &mut ctx, 0), Decision::Fault { .. }), "call 1 of hook 0 is X");
    for _ in 0..5 {
        assert_eq!(seg.on_call(1, &mut ctx, 0), Decision::Pass, "hook 1 is not armed");
    }
    assert_eq!(seg.on_call(0, &mut ctx, 0), Decision::Pass, "call 2 of the armed hook is O");
    assert_eq!(seg.hook_totals(1), (5, 0), "unarmed calls are still counted");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// The per-call path (its inline fast path and the general one it gives way to) decides random mode exactly as
    /// `decide` does with the thread's stream, counts exactly, and records exactly the armed calls.
    #[test]
    fn the_per_call_path_decides_random_mode_exactly_as_decide(
        seed: u64,
        ppm in prop_oneof![Just(0u32), Just(1_000_000u32), 0u32..=1_000_000],
        armed in 0u64..16,
        hooks in prop::collection::vec(0usize..4, 1..700),
    ) {
        let pool = [-3, -6, -20];
        let mut s = strategy(Mode::Random, &pool);
        s.probability_ppm = ppm;
        s.seed = seed;
        s.recording = true;
        s.arm_mask = [armed, 0];
        let seg = segment_with(&s);
        let mut ctx = ThreadCtx::register(&seg, 7);
        let mut reference = Rng::for_thread(seed, 0);
        let mut want_totals = [(0u64, 0u64); 4];
        let mut want_records = Vec::new();
        for (i, &hook) in hooks.iter().enumerate() {
            let is_armed = armed & (1 << hook) != 0;
            let want = if is_armed { decide(&seg.control, 0, &mut reference) } else { Decision::Pass };
            let got = seg.on_call(hook, &mut ctx, i as u64);
            prop_assert_eq!(got, want, "call {} of hook {}", i, hook);
            want_totals[hook].0 += 1;
            if let Decision::Fault { code, .. } = want {
                want_totals[hook].1 += 1;
                want_records.push((hook as u16, code, i as u64));
            } else if is_armed {
                want_records.push((hook as u16, 0, i as u64));
            }
        }
        for (hook, want) in want_totals.iter().enumerate() {
            prop_assert_eq!(seg.hook_totals(hook), *want, "hook {}", hook);
        }
        let mut recorded = Vec::new();
        shm_proto::ring::RingCursor::oldest(&seg.ring).drain(&seg.ring, false, |r| {
            recorded.push((r.hook, r.code, r.size));
        });
        prop_assert_eq!(recorded, want_records);
    }
}

#[test]
fn a_published_change_takes_effect_at_the_next_call() {
    let mut s = strategy(Mode::Random, &[-3]);
    s.seed = 5;
    let seg = segment_with(&s);
    let mut ctx = ThreadCtx::register(&seg, 1);
    assert!((0..300).all(|_| seg.on_call(0, &mut ctx, 0) == Decision::Pass), "0 %: every call passes");

    s.probability_ppm = 1_000_000;
    seg.control.publish(&seg.cursor, &seg.journal, &s, |_| true).unwrap();
    assert_eq!(
        seg.on_call(0, &mut ctx, 0),
        Decision::Fault { code: -3, delay_us: 0, site: Site::Post },
        "100 %: the very next call"
    );

    // A new seed restarts the thread's stream: the same decisions as a fresh thread 0 under that seed.
    s.probability_ppm = 500_000;
    s.seed = 77;
    seg.control.publish(&seg.cursor, &seg.journal, &s, |_| true).unwrap();
    let mut reference = Rng::for_thread(77, 0);
    for i in 0..200 {
        assert_eq!(seg.on_call(0, &mut ctx, 0), decide(&seg.control, 0, &mut reference), "call {i}");
    }

    s.recording = true;
    s.arm_mask = [0, 0];
    seg.control.publish(&seg.cursor, &seg.journal, &s, |_| true).unwrap();
    let written = seg.ring.written();
    assert!((0..50).all(|_| seg.on_call(0, &mut ctx, 0) == Decision::Pass), "disarmed");
    assert_eq!(seg.ring.written(), written, "unarmed calls are not recorded");
}
