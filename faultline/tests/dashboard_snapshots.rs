//! Snapshot tests of every dashboard screen area, drawn with ratatui's `TestBackend` from segments created here
//! (made-up pids, counters and recordings written directly, a fixed clock), so every frame is deterministic.
//! Review changed snapshots with `cargo insta review`, or rerun with `INSTA_UPDATE=always` and read the diff.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use faultline::dashboard::app::{update, Action, App, Overlay, Pane};
use faultline::dashboard::keys::{Context, KeyBindings};
use faultline::dashboard::processes::sampler::{Key, Sampler, Snapshot, Update};
use faultline::dashboard::render::{self, theme::Theme};
use faultline::targets::Target;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::Terminal;
use shm_proto::segment::{self, Found, Identity};
use shm_proto::sync::Ordering::Relaxed;
use shm_proto::{Kind, Mode, Segment, SegmentMap, Strategy};

const UCX_HOOKS: [&str; 18] = [
    "ucp_get_nbx",
    "ucp_put_nbx",
    "ucp_tag_send_nbx",
    "ucp_tag_send_sync_nbx",
    "ucp_tag_recv_nbx",
    "ucp_am_send_nbx",
    "ucp_am_recv_data_nbx",
    "ucp_stream_send_nbx",
    "ucp_stream_recv_nbx",
    "ucp_atomic_op_nbx",
    "ucp_ep_flush_nbx",
    "ucp_worker_flush_nbx",
    "ucp_ep_close_nbx",
    "ucp_ep_create",
    "ucp_mem_map",
    "ucp_rkey_pack",
    "ucp_ep_rkey_unpack",
    "ucp_request_check_status",
];
const CUDA_HOOKS: [&str; 4] = ["cudaMalloc", "cudaMemcpy", "cudaLaunchKernel", "cuMemAlloc_v2"];

/// Record times: monotonic ns of the first record, and the wall clock it maps to (12:00:00 UTC).
const T0_NS: u64 = 5_000_000_000;
const WALL_AT_T0_NS: i128 =
    1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % 86_400_000_000_000 + 43_200 * 1_000_000_000;

/// Segments are created in private memory: `FAULTLINE_SHM_DIR` names a directory that does not exist, so
/// `SegmentMap::create` falls back to an anonymous mapping (nothing is written to `/dev/shm`, nothing to clean up).
fn private_segments() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| std::env::set_var("FAULTLINE_SHM_DIR", "/nonexistent/faultline-dashboard-snapshots"));
}

/// Creates a segment for a made-up process and returns it as a target.
fn target(kind: Kind, pid: u32, exe: &str, hooks: &[&str], alive: bool, configure: impl Fn(&mut Strategy)) -> Target {
    private_segments();
    let default_arm_mask = [(1u64 << (hooks.len().min(17))) - 1, 0];
    let mut strategy = Strategy::defaults(shm_proto::codes::default_pool(kind), |h| h < hooks.len().min(17));
    configure(&mut strategy);
    let pid_ns = shm_proto::process::own_pid_ns();
    let pod = shm_proto::pod::PodIdentity::default();
    let identity =
        Identity { kind, pid, pid_ns, start_time_ticks: 1, exe_name: exe, hooks, default_arm_mask, pod: &pod };
    let (map, _private) = SegmentMap::create(&identity, &strategy).expect("segment created");
    let path = std::path::PathBuf::from(segment::file_name(kind, pid));
    let found = Found::local(path, kind, pid);
    Target { found, map, alive }
}

fn count(segment: &Segment, hook: usize, calls: u64, faults: u64) {
    segment.stripes[0].hooks[hook].calls.fetch_add(calls, Relaxed);
    segment.stripes[0].hooks[hook].faults.fetch_add(faults, Relaxed);
}

/// Three processes: a busy UCX one with 5 % random faults and a recording, a dead one in pattern mode, an idle
/// CUDA one. Ticks the sampler through 30 simulated seconds so the rates and the chart have history.
fn fixture(base_pid: u32) -> (Snapshot, Key) {
    let busy = target(Kind::Ucx, base_pid, "ucx_selfloop", &UCX_HOOKS, true, |s| {
        s.enabled = true;
        s.probability_ppm = 50_000;
        s.recording = true;
    });
    let dead = target(Kind::Ucx, base_pid + 1, "nixl_agent", &UCX_HOOKS, false, |s| {
        s.enabled = true;
        s.mode = Mode::Pattern;
        s.pattern = "XOOOOXOO".chars().map(|c| c == 'X').collect();
        s.skip = 2;
        s.limit = 100;
        s.delay_us = 500;
        s.delay_mode = shm_proto::layout::DelayMode::BeforeFault;
    });
    let idle = target(Kind::Cuda, base_pid + 2, "vllm_worker", &CUDA_HOOKS, true, |_| {});
    dead.segment().cursor.armed_calls.store(13, Relaxed);
    count(dead.segment(), 1, 900, 110);
    count(dead.segment(), 0, 400, 52);
    count(idle.segment(), 0, 12, 0);
    let key = Key::local(base_pid, Kind::Ucx);
    let mut sampler = Sampler::offline();
    sampler.set_clock_offset(WALL_AT_T0_NS - i128::from(T0_NS));
    sampler.set_focus(Some(key));
    sampler.insert(busy);
    sampler.insert(dead);
    sampler.insert(idle);
    let mut sequence_time = T0_NS;
    for tick in 0..300u64 {
        // A ramp, then steady traffic: ~2,000 calls/s on put/get, 5 % of them faulted.
        let per_tick = if tick < 100 { tick * 2 } else { 200 };
        let segment = sampler.segment(key).expect("attached");
        count(segment, 0, per_tick, per_tick / 20);
        count(segment, 1, per_tick, per_tick / 20);
        count(segment, 17, per_tick * 3, 0);
        sampler.tick(Duration::from_millis(100 * tick));
    }
    let segment = sampler.segment(key).expect("attached");
    // The fixture's timestamps are nanoseconds (a shim on this machine would stamp TSC ticks).
    segment.ring.start_clock(shm_proto::clock::TickSource::MonotonicNs);
    for i in 0..40u64 {
        let injected = i % 7 == 3;
        let code = if injected { [-3, -6, -20][(i / 7 % 3) as usize] } else { 0 };
        segment.ring.push(
            shm_proto::layout::SegmentRing::lane_of(0),
            sequence_time,
            (i % 2) as u16,
            injected.then_some(shm_proto::layout::Site::Post),
            4711,
            code,
            64,
        );
        sequence_time += 250_000;
    }
    (sampler.tick(Duration::from_millis(30_000)), key)
}

fn app_with(snapshot: Snapshot, width: u16, height: u16) -> App {
    let mut app = App::new(false, None, Theme { color: false });
    update(&mut app, Action::Resize(width, height));
    update(&mut app, Action::Engine(Update::Snapshot(Arc::new(snapshot))));
    app
}

fn press(app: &mut App, code: KeyCode) {
    update(app, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn type_text(app: &mut App, text: &str) {
    text.chars().for_each(|c| press(app, KeyCode::Char(c)));
}

fn draw(app: &App, width: u16, height: u16, area: impl Fn(&mut ratatui::Frame, &App, Rect)) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| area(frame, app, frame.area())).expect("draws");
    terminal
}

fn screen(frame: &mut ratatui::Frame, app: &App, _area: Rect) {
    render::render(frame, app);
}

#[test]
fn process_list() {
    let (snapshot, _) = fixture(4200);
    let app = app_with(snapshot, 120, 40);
    let terminal = draw(&app, 120, 7, render::process_list::render);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn process_list_sorted_and_filtered() {
    let (snapshot, _) = fixture(4210);
    let mut app = app_with(snapshot, 120, 40);
    type_text(&mut app, "s");
    for _ in 0..5 {
        type_text(&mut app, "s");
    }
    assert_eq!(app.list.sort, faultline::dashboard::processes::list::SortColumn::CallsPerS);
    type_text(&mut app, "/ucx");
    press(&mut app, KeyCode::Enter);
    let terminal = draw(&app, 120, 7, render::process_list::render);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn process_view() {
    let (snapshot, _) = fixture(4220);
    let app = app_with(snapshot, 120, 40);
    let terminal = draw(&app, 100, 34, render::process_view::render);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn process_view_of_a_dead_process_in_pattern_mode() {
    let (snapshot, _) = fixture(4230);
    let mut snapshot = snapshot;
    // Focus the dead process: the engine would sample it in detail; here its state comes from a second fixture run.
    let (dead_snapshot, _) = {
        let dead = target(Kind::Ucx, 4239, "nixl_agent", &UCX_HOOKS, false, |s| {
            s.enabled = true;
            s.mode = Mode::Pattern;
            s.pattern = "XOOOOXOO".chars().map(|c| c == 'X').collect();
            s.skip = 2;
            s.limit = 100;
            s.delay_us = 500;
            s.delay_mode = shm_proto::layout::DelayMode::BeforeFault;
            s.site = shm_proto::layout::Site::Completion;
            s.pool = vec![-3, -15];
        });
        dead.segment().cursor.armed_calls.store(13, Relaxed);
        count(dead.segment(), 1, 900, 110);
        let key = Key::local(4239, Kind::Ucx);
        let mut sampler = Sampler::offline();
        sampler.set_focus(Some(key));
        sampler.insert(dead);
        (sampler.tick(Duration::ZERO), key)
    };
    snapshot.rows.extend(dead_snapshot.rows);
    snapshot.detail = dead_snapshot.detail;
    let mut app = app_with(snapshot, 120, 40);
    type_text(&mut app, "/4239");
    press(&mut app, KeyCode::Enter);
    let terminal = draw(&app, 100, 34, render::process_view::render);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn recording_tail() {
    let (snapshot, _) = fixture(4240);
    let app = app_with(snapshot, 120, 40);
    let terminal = draw(&app, 80, 20, render::recording::render);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn whole_screen() {
    let (snapshot, _) = fixture(4250);
    let app = app_with(snapshot, 160, 50);
    let terminal = draw(&app, 160, 50, screen);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn editor_validates_as_you_type() {
    let (snapshot, _) = fixture(4260);
    let mut app = app_with(snapshot, 120, 40);
    press(&mut app, KeyCode::Char('e'));
    assert!(matches!(app.overlay, Overlay::Editor(_)), "status: {:?}", app.status);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    update(&mut app, Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
    type_text(&mut app, "150");
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "XOOQ");
    let terminal = draw(&app, 120, 40, screen);
    insta::assert_snapshot!(terminal.backend());
    // Enter with invalid fields changes nothing: no command leaves, the editor stays open, the status says why.
    app.take_outbox();
    press(&mut app, KeyCode::Enter);
    assert!(app.take_outbox().is_empty());
    assert!(matches!(app.overlay, Overlay::Editor(_)));
    let status = app.status.clone().expect("a status line");
    assert!(status.error && status.text.contains("Probability"), "{status:?}");
}

#[test]
fn error_code_picker() {
    let (snapshot, _) = fixture(4270);
    let mut app = app_with(snapshot, 120, 40);
    press(&mut app, KeyCode::Char('e'));
    for _ in 0..4 {
        press(&mut app, KeyCode::Down);
    }
    press(&mut app, KeyCode::Char(' '));
    type_text(&mut app, "no_");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let terminal = draw(&app, 120, 40, screen);
    insta::assert_snapshot!(terminal.backend());
    let Overlay::Editor(editor) = &app.overlay else { panic!("editor open") };
    assert_eq!(editor.draft.pool, vec![-3, -6, -20, -2], "UCS_ERR_NO_RESOURCE added by name");
}

#[test]
fn help_overlay_lists_every_key() {
    let (snapshot, _) = fixture(4280);
    // Tall enough for the whole help: every section down to the mouse's.
    let mut app = app_with(snapshot, 120, 90);
    press(&mut app, KeyCode::Char('?'));
    let terminal = draw(&app, 120, 90, screen);
    let text = terminal.backend().to_string();
    for context in Context::ALL {
        assert!(text.contains(context.title()), "help misses the section {:?}", context.title());
    }
    assert!(text.contains("scroll the pane under the pointer"), "help misses the mouse");
    for binding in &KeyBindings::default().bindings {
        assert!(text.contains(binding.help), "help misses {:?}", binding.help);
        for key in &binding.keys {
            assert!(text.contains(&key.to_string()), "help misses key {key}");
        }
    }
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn too_small_terminal() {
    let (snapshot, _) = fixture(4290);
    let app = app_with(snapshot, 60, 15);
    let terminal = draw(&app, 60, 15, screen);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn dump_and_replay_dialogs() {
    let (snapshot, _) = fixture(4300);
    let mut app = app_with(snapshot, 120, 30);
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Right);
    let dump = draw(&app, 120, 30, screen);
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('p'));
    let replay = draw(&app, 120, 30, screen);
    insta::assert_snapshot!(format!("{}\n{}", dump.backend(), replay.backend()));
}

#[test]
fn no_color_means_no_colour_at_all() {
    let (snapshot, _) = fixture(4310);
    let mut app = app_with(snapshot, 160, 50);
    let plain = draw(&app, 160, 50, screen);
    let colours = |terminal: &Terminal<TestBackend>| {
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .filter(|cell| cell.fg != Color::Reset || cell.bg != Color::Reset)
            .count()
    };
    assert_eq!(colours(&plain), 0, "NO_COLOR: only bold / dim / reverse");
    app.theme = Theme { color: true };
    assert!(colours(&draw(&app, 160, 50, screen)) > 0);
}

#[test]
fn keys_move_between_panes_and_freeze_keeps_the_screen() {
    let (snapshot, key) = fixture(4320);
    let mut app = app_with(snapshot.clone(), 160, 50);
    assert_eq!(app.list.selected, Some(key));
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.pane, Pane::Chart);
    update(&mut app, Action::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)));
    update(&mut app, Action::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)));
    assert_eq!(app.pane, Pane::Recording);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Char('f'));
    let mut newer = snapshot.clone();
    newer.rows.clear();
    update(&mut app, Action::Engine(Update::Snapshot(Arc::new(newer))));
    assert_eq!(app.snapshot.rows.len(), 3, "frozen: the new snapshot is not shown");
    press(&mut app, KeyCode::Char('f'));
    assert!(app.snapshot.rows.is_empty(), "unfrozen: the newest snapshot is shown");
    assert!(KeyBindings::default().of(Context::Main).count() > 10);
}

#[test]
fn the_mouse_selects_rows_sorts_by_headers_and_focuses_panes() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let (snapshot, _) = fixture(4330);
    let mut app = app_with(snapshot, 160, 50);
    let areas = app.areas();
    let click = |app: &mut App, column: u16, row: u16| {
        let kind = MouseEventKind::Down(MouseButton::Left);
        update(app, Action::Mouse(MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE }));
    };
    // Row 3 of the list (under the border and the header) is the third process: the dead one, after the live ones.
    click(&mut app, areas.list.x + 5, areas.list.y + 4);
    assert_eq!(app.list.selected, Some(Key::local(4331, Kind::Ucx)));
    assert!(app.outbox.contains(&faultline::dashboard::processes::sampler::Command::Focus(app.list.selected)));
    // The CALLS/S header sorts by it, busiest first.
    let (_, x, _) = render::process_list::columns(areas.list, false)
        .into_iter()
        .find(|(c, _, _)| *c == faultline::dashboard::processes::list::SortColumn::CallsPerS)
        .expect("column");
    click(&mut app, x + 2, areas.list.y + 1);
    assert_eq!(app.list.sort, faultline::dashboard::processes::list::SortColumn::CallsPerS);
    assert_eq!(app.visible_rows()[0].key.pid, 4330);
    // A click in the recording pane focuses it; the wheel scrolls it back.
    click(&mut app, areas.recording.x + 3, areas.recording.y + 3);
    assert_eq!(app.pane, Pane::Recording);
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: areas.recording.x + 3,
        row: areas.recording.y + 3,
        modifiers: KeyModifiers::NONE,
    };
    update(&mut app, Action::Mouse(wheel));
    assert_eq!(app.tail_scroll, 3);
}

#[test]
fn pid_focus_and_read_only() {
    let (snapshot, _) = fixture(4340);
    // `faultline --pid 4342` selects that process as soon as it is listed.
    let mut app = App::new(true, Some(4342), Theme { color: false });
    update(&mut app, Action::Engine(Update::Snapshot(Arc::new(snapshot))));
    assert_eq!(app.list.selected, Some(Key::local(4342, Kind::Cuda)));
    // --read-only: the editor does not open, and the engine refuses every change with the CLI's message.
    press(&mut app, KeyCode::Char('e'));
    assert_eq!(app.overlay, Overlay::None);
    let status = app.status.clone().expect("status");
    assert!(status.error && status.text.contains("--read-only"), "{status:?}");
    app.take_outbox();
    press(&mut app, KeyCode::Char('t'));
    let commands = app.take_outbox();
    let [faultline::dashboard::processes::sampler::Command::Run(job)] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    let outcome = Sampler::offline().run(job, faultline::Options { read_only: true }).expect("a local job");
    assert!(!outcome.ok && outcome.message.contains("--read-only: refusing to toggle"), "{outcome:?}");
}

#[test]
fn names_with_control_characters_are_drawn_escaped_and_aligned() {
    // An executable and a hook name that would recolour the terminal and clear it (ESC, C1 CSI) if drawn raw.
    let evil_hooks = ["ucp_get_nbx", "ucp_put\u{1b}[2J_nbx", "ucp_request_check_status"];
    let evil = target(Kind::Ucx, 4350, "evil\u{1b}[31mred\u{9b}2J", &evil_hooks, true, |s| s.enabled = true);
    let plain = target(Kind::Ucx, 4351, "plain", &UCX_HOOKS, true, |_| {});
    count(evil.segment(), 1, 10, 1);
    let key = Key::local(4350, Kind::Ucx);
    let mut sampler = Sampler::offline();
    sampler.set_focus(Some(key));
    sampler.insert(evil);
    sampler.insert(plain);
    let app = app_with(sampler.tick(Duration::ZERO), 120, 40);
    let list = draw(&app, 120, 5, render::process_list::render);
    let view = draw(&app, 100, 20, render::process_view::render);
    // Both rows put KIND at the same column: the escaped name was fitted, not the raw one.
    let kind_column = |row: &str| row.find(" ucx ").expect("a KIND cell");
    let rows: Vec<String> = list.backend().to_string().lines().map(String::from).collect();
    assert!(rows[2].contains("evil\\x1b[31mred\\u{9b}2J"), "{rows:?}");
    assert_eq!(kind_column(&rows[2]), kind_column(&rows[3]), "{rows:?}");
    insta::assert_snapshot!(format!("{}\n{}", list.backend(), view.backend()));
}

#[test]
fn the_dashboard_fault_percent_is_the_clis() {
    // 5 faults in 50 armed calls, and 10,000 calls of an unarmed polling hook, all within one sampled second.
    let polling = target(Kind::Ucx, 4360, "nixl_agent", &UCX_HOOKS, true, |s| s.enabled = true);
    let key = Key::local(4360, Kind::Ucx);
    let mut sampler = Sampler::offline();
    sampler.insert(polling);
    sampler.tick(Duration::ZERO);
    let segment = sampler.segment(key).expect("attached");
    count(segment, 1, 50, 5);
    count(segment, 17, 10_000, 0);
    let snapshot = sampler.tick(Duration::from_secs(1));
    let row = &snapshot.rows[0];
    let target = target(Kind::Ucx, 4361, "nixl_agent", &UCX_HOOKS, true, |s| s.enabled = true);
    count(target.segment(), 1, 50, 5);
    count(target.segment(), 17, 10_000, 0);
    let state = faultline::state::ProcessState::read(&target).expect("readable");
    assert_eq!(row.fault_percent(), Some(10.0));
    assert_eq!(state.fault_percent, 10.0, "faultline status: the same definition over the whole run");
    assert_eq!(faultline::state::PsRow::of(&target).fault_percent, Some(10.0), "faultline ps");
}

#[test]
fn live_processes_come_before_dead_ones_whatever_the_sort() {
    // Thirty segments left by exited processes with lower pids, and two live processes.
    let mut sampler = Sampler::offline();
    for pid in 4400..4430 {
        sampler.insert(target(Kind::Ucx, pid, "nixl_agent", &UCX_HOOKS, false, |s| s.enabled = true));
    }
    sampler.insert(target(Kind::Ucx, 4430, "vllm_worker", &UCX_HOOKS, true, |_| {}));
    sampler.insert(target(Kind::Cuda, 4431, "vllm_worker", &CUDA_HOOKS, true, |s| s.recording = true));
    let mut app = app_with(sampler.tick(Duration::ZERO), 120, 40);
    for sort in faultline::dashboard::processes::list::SortColumn::ALL {
        for descending in [false, true] {
            (app.list.sort, app.list.descending) = (sort, descending);
            let alive: Vec<bool> = app.visible_rows().iter().map(|row| row.alive).collect();
            assert_eq!(alive[..2], [true, true], "{sort:?} descending={descending}");
            assert!(alive[2..].iter().all(|&a| !a), "{sort:?} descending={descending}");
        }
    }
    (app.list.sort, app.list.descending) = (faultline::dashboard::processes::list::SortColumn::Pid, false);
    let terminal = draw(&app, 120, 7, render::process_list::render);
    insta::assert_snapshot!(terminal.backend());
}

/// A cluster node's snapshot, as its agent's `faultline node watch` sends it: each target's `status --json` state
/// with its pod and newest records, and the recording's totals.
fn agent_snapshot(node: &str, processes: &[(&Target, &str)]) -> faultline::cluster::live::FeedEvent {
    let processes = processes
        .iter()
        .map(|(target, pod)| {
            let mut state = serde_json::to_value(faultline::state::ProcessState::read(target).unwrap()).unwrap();
            state["namespace"] = "dynamo".into();
            state["pod"] = (*pod).into();
            state["container"] = "worker".into();
            let recording = faultline::recording::newest(target, 8);
            let dump = faultline::recording::records(target, &recording, &recording.records);
            state["records"] = serde_json::to_value(&dump.records).unwrap();
            state["recorded"] = recording.recorded.into();
            state["missed"] = recording.missed.into();
            state
        })
        .collect();
    faultline::cluster::live::FeedEvent::Snapshot { node: node.to_string(), processes }
}

/// Two pods' processes on node gpu-a beside a local one: two agent snapshots a second apart give the rates.
fn cluster_fixture() -> (Sampler, Target, Target) {
    let decode = target(Kind::Ucx, 4401, "vllm", &UCX_HOOKS, true, |s| {
        s.enabled = true;
        s.probability_ppm = 100_000;
        s.recording = true;
    });
    let prefill = target(Kind::Cuda, 4402, "vllm", &CUDA_HOOKS, true, |_| {});
    let local = target(Kind::Ucx, 4400, "ucx_selfloop", &UCX_HOOKS, true, |_| {});
    let mut sampler = Sampler::offline();
    sampler.insert(local);
    let at = |s: u64| Duration::from_secs(s);
    assert_eq!(
        sampler.on_feed(agent_snapshot("gpu-a", &[(&decode, "decode-0"), (&prefill, "prefill-0")]), at(10)),
        None
    );
    count(decode.segment(), 1, 3000, 300);
    count(prefill.segment(), 0, 40, 0);
    decode.segment().ring.start_clock(shm_proto::clock::TickSource::MonotonicNs);
    for i in 0..5u64 {
        decode.segment().ring.push(
            shm_proto::layout::SegmentRing::lane_of(0),
            T0_NS + i * 1000,
            1,
            (i == 2).then_some(shm_proto::layout::Site::Post),
            4711,
            if i == 2 { -3 } else { 0 },
            64,
        );
    }
    sampler.on_feed(agent_snapshot("gpu-a", &[(&decode, "decode-0"), (&prefill, "prefill-0")]), at(11));
    (sampler, decode, prefill)
}

#[test]
fn cluster_processes_are_listed_beside_local_ones_with_their_node_and_pod() {
    let (mut sampler, _decode, _prefill) = cluster_fixture();
    let decode = Key { node: faultline::dashboard::processes::sampler::NodeId(1), pid: 4401, kind: Kind::Ucx };
    sampler.set_focus(Some(decode));
    let snapshot = sampler.tick(Duration::from_secs(11));
    assert_eq!(snapshot.rows.len(), 3, "the local process and two remote ones");
    let row = snapshot.rows.iter().find(|r| r.key == decode).expect("decode-0's row");
    assert_eq!((row.calls_per_s, row.faults_per_s), (3000.0, 300.0), "rates between the agent's snapshots");
    let detail = snapshot.detail.clone().expect("the remote process's detail");
    assert_eq!(detail.state.probability_ppm, 100_000);
    assert_eq!(
        detail.tail.iter().map(|r| (r.sequence, r.injected)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, true), (4, false), (5, false)]
    );
    assert_eq!(detail.tail[2].code_name, Some("UCS_ERR_IO_ERROR"));
    let mut app = app_with(snapshot, 140, 40);
    let terminal = draw(&app, 140, 7, render::process_list::render);
    insta::assert_snapshot!("cluster_process_list", terminal.backend());

    // The filter matches the pod.
    type_text(&mut app, "/prefill");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.visible_rows().iter().map(|r| r.key.pid).collect::<Vec<_>>(), [4402]);

    // The node's session drops: the rows stay, dimmed, and the list says since when.
    let since = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(WALL_AT_T0_NS).unwrap());
    let down =
        faultline::cluster::live::FeedEvent::Down { node: "gpu-a".into(), since, why: "the session ended".into() };
    assert_eq!(sampler.on_feed(down, Duration::from_secs(12)), None);
    let snapshot = sampler.tick(Duration::from_secs(12));
    assert!(snapshot.rows.iter().filter(|r| r.node.is_some()).all(|r| r.unreachable_since == Some(since)));
    let app = app_with(snapshot, 140, 40);
    let terminal = draw(&app, 140, 7, render::process_list::render);
    insta::assert_snapshot!("cluster_process_list_unreachable", terminal.backend());

    // Many nodes down: counted, not named (the title has one line).
    for node in ["gpu-b", "gpu-c"] {
        let down = faultline::cluster::live::FeedEvent::Down { node: node.into(), since, why: "no agent".into() };
        sampler.on_feed(down, Duration::from_secs(13));
    }
    let app = app_with(sampler.tick(Duration::from_secs(13)), 140, 40);
    let terminal = draw(&app, 140, 7, render::process_list::render);
    let title: String = (0..140).map(|x| terminal.backend().buffer()[(x, 0)].symbol().to_string()).collect();
    assert!(title.contains("Processes (3 shown) · 3 nodes unreachable (their rows dimmed)"), "{title}");
}

#[test]
fn jobs_on_cluster_processes_go_to_their_agent_once_as_command_words() {
    use faultline::actions::{Change, Switch};
    use faultline::cluster::live::FeedEvent;
    use faultline::dashboard::processes::sampler::{Job, NodeId};
    use faultline::request::Request;
    let (mut sampler, _decode, _prefill) = cluster_fixture();
    let options = faultline::Options { read_only: false };
    let job = Job::Requests {
        requests: vec![Request::Change(Change::Probability(500_000)), Request::Change(Change::Enabled(Switch::Off))],
        node: NodeId(1),
        selection: faultline::Selection { pids: vec![4401], kind: Some(Kind::Ucx) },
        what: "set the probability, disable fault injection".into(),
    };
    assert_eq!(sampler.run(&job, options), None, "answered when the agent replies");
    let orders = sampler.take_remote_orders();
    let [first] = orders.as_slice() else { panic!("{orders:?}") };
    assert_eq!(first.node, "gpu-a");
    assert_eq!(first.args, ["--kind", "ucx", "--pid", "4401", "probability", "50"]);
    let ok = |token: u64| FeedEvent::Reply {
        token,
        node: "gpu-a".into(),
        reply: Ok(serde_json::json!({"type": "reply", "exit": 0, "text": ""})),
    };
    // The second command goes only once the first is answered.
    assert_eq!(sampler.on_feed(ok(first.token), Duration::from_secs(12)), None);
    let orders = sampler.take_remote_orders();
    let [second] = orders.as_slice() else { panic!("{orders:?}") };
    assert_eq!(second.args, ["--kind", "ucx", "--pid", "4401", "disable"]);
    let outcome = sampler.on_feed(ok(second.token), Duration::from_secs(12)).expect("the job's outcome");
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.message, "set the probability, disable fault injection: done on pid 4401 on node gpu-a");

    // A session that dropped before the reply: the job fails with the feed's word, and nothing is sent again.
    assert_eq!(sampler.run(&job, options), None);
    let token = sampler.take_remote_orders()[0].token;
    let dropped =
        FeedEvent::Reply { token, node: "gpu-a".into(), reply: Err("dropped before the agent answered".into()) };
    let outcome = sampler.on_feed(dropped, Duration::from_secs(13)).expect("the job's outcome");
    assert!(!outcome.ok && outcome.message.ends_with("dropped before the agent answered"), "{outcome:?}");
    assert!(sampler.take_remote_orders().is_empty(), "not sent again");

    // The agent's refusal is the job's failure, in its words; the rest of the job is not sent.
    assert_eq!(sampler.run(&job, options), None);
    let token = sampler.take_remote_orders()[0].token;
    let refused = FeedEvent::Reply {
        token,
        node: "gpu-a".into(),
        reply: Ok(
            serde_json::json!({"type": "reply", "exit": 2, "error": "--read-only: refusing to set the probability"}),
        ),
    };
    let outcome = sampler.on_feed(refused, Duration::from_secs(13)).expect("the job's outcome");
    assert_eq!(
        outcome.message,
        "set the probability, disable fault injection: --read-only: refusing to set the probability"
    );
    assert!(sampler.take_remote_orders().is_empty());

    // Dump: the agent prints the recording, and the file is written here, where the dashboard runs.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decode.json");
    let dump = Job::Requests {
        requests: vec![Request::Dump {
            format: faultline::recording::DumpFormat::Pattern,
            count: Some(5),
            output: Some(file.clone()),
        }],
        node: NodeId(1),
        selection: faultline::Selection { pids: vec![4401], kind: Some(Kind::Ucx) },
        what: "dump".into(),
    };
    assert_eq!(sampler.run(&dump, options), None);
    let orders = sampler.take_remote_orders();
    assert_eq!(orders[0].args, ["--kind", "ucx", "--pid", "4401", "record", "dump", "pattern", "--count", "5"]);
    let printed = FeedEvent::Reply {
        token: orders[0].token,
        node: "gpu-a".into(),
        reply: Ok(serde_json::json!({"type": "reply", "exit": 0, "text": "{\"pattern\": \"OOXOO\"}\n"})),
    };
    let outcome = sampler.on_feed(printed, Duration::from_secs(13)).expect("the job's outcome");
    assert_eq!(outcome.message, format!("wrote {}", file.display()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"pattern\": \"OOXOO\"}\n");

    // Replay: another process of the same node plays decode-0's recording; the agent reads it there.
    let source = Key { node: NodeId(1), pid: 4401, kind: Kind::Ucx };
    assert_eq!(sampler.run(&Job::ReplayFrom { source, into: 4403, looping: true }, options), None);
    let orders = sampler.take_remote_orders();
    assert_eq!(orders[0].args, ["--kind", "ucx", "--pid", "4403", "replay", "--from-pid", "4401", "--loop"]);

    // A job on a node that is down is refused at once, saying since when.
    let since = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(WALL_AT_T0_NS).unwrap());
    sampler.on_feed(
        FeedEvent::Down { node: "gpu-a".into(), since, why: "no ready agent".into() },
        Duration::from_secs(14),
    );
    let outcome = sampler.run(&job, options).expect("refused at once");
    assert_eq!(
        outcome.message,
        "set the probability, disable fault injection: node gpu-a is unreachable since 12:00:00: no ready agent"
    );
    assert!(sampler.take_remote_orders().is_empty());

    // The API server cannot be reached: said once, not at every retry.
    let failed = || FeedEvent::Failed("cannot list nodes: connection refused".into());
    let outcome = sampler.on_feed(failed(), Duration::from_secs(15)).expect("said");
    assert_eq!(outcome.message, "cluster processes: cannot list nodes: connection refused");
    assert_eq!(sampler.on_feed(failed(), Duration::from_secs(20)), None);
}
