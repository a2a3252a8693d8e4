//! The `faultline` dashboard: a terminal UI over every shimmed process (ratatui + crossterm), and over the GPU nodes
//! of a Kubernetes cluster (`v`).
//!
//! - [`processes`]: the process side — the engine thread ([`processes::sampler`]) that samples segments, publishes
//!   snapshots and carries out changes through [`crate::request::execute`]; the process list; the strategy editor
//!   and the dump / replay dialogs, each with its own keys;
//! - [`cluster`]: the cluster view (`v`), its dialogs and keys, and its worker thread, the only place the dashboard
//!   calls Kubernetes;
//! - [`app`]: the model, its `update` function, and the dispatch of keys and clicks to the side that has the focus;
//! - [`keys`]: every key binding, with its help, and the key names the hints show;
//! - [`render`]: drawing, one file per screen area, over read-only state.
//!
//! This file owns the terminal: raw mode, alternate screen and mouse capture on entry, all three undone on exit —
//! also on error and on panic (a panic hook restores the terminal before the message is printed). Input is read on
//! its own thread; the main thread only applies actions and draws.

pub mod app;
pub mod cluster;
pub mod keys;
pub mod processes;
pub mod render;

use std::io::{self, Stdout, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::Once;
use std::time::{Duration, Instant};

use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use self::app::{update, Action, App};
use self::cluster::worker::{self, Worker, WorkerSettings};
use self::processes::sampler::{self, Sampler};
use self::render::theme::Theme;
use crate::cluster::live::{Feed, FeedSettings};
use crate::cluster::ConnectOptions;
use crate::request;
use crate::targets::Selection;

/// How the dashboard runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--kind` narrows what is shown; the first `--pid` is selected when it appears.
    pub selection: Selection,
    /// `--read-only`: no change is made to any process.
    pub read_only: bool,
    /// Measure frame times and CPU use instead of running until `q` (see `faultline/benches/dashboard.sh`).
    pub bench: Option<Bench>,
    /// How the cluster view connects (only once it is first opened).
    pub cluster: ConnectOptions,
    /// `--cluster`: list the cluster's shimmed processes beside the local ones from the start (else once the
    /// cluster view `v` has connected).
    pub cluster_processes: bool,
}

/// A measured run.
#[derive(Debug, Clone)]
pub struct Bench {
    /// How long to measure, after a warm-up of two seconds.
    pub seconds: f64,
    /// Where to write the results.
    pub report: PathBuf,
}

/// Opens the dashboard and runs it until the user quits.
pub fn run(options: Options) -> anyhow::Result<()> {
    let (actions, inbox) = mpsc::channel::<Action>();
    let engine = sampler::spawn(
        Sampler::new(Selection { pids: Vec::new(), kind: options.selection.kind }),
        request::Options { read_only: options.read_only },
        actions.clone(),
        Action::Engine,
    );
    let cluster_actions = actions.clone();
    // Started when the cluster view first asks for something: no thread, no kubeconfig read before that.
    let mut cluster_worker: Option<Worker> = None;
    // The cluster's processes: with --cluster from the start, else once the cluster view has connected.
    let mut feed: Option<Feed> = None;
    let start_feed =
        |engine: &sampler::Engine| Feed::spawn(options.cluster.clone(), FeedSettings::default(), engine.feed_sink());
    if options.cluster_processes {
        feed = Some(start_feed(&engine));
    }
    install_panic_hook();
    let mut terminal = TerminalGuard::enter()?;
    spawn_input_thread(actions);
    let mut app = App::new(options.read_only, options.selection.pids.first().copied(), Theme::from_env());
    let size = terminal.terminal.size()?;
    app.size = (size.width, size.height);
    let mut stats = options.bench.as_ref().map(|bench| BenchStats::new(bench.seconds));
    terminal.terminal.draw(|frame| render::render(frame, &app))?;
    while let Ok(action) = inbox.recv() {
        update(&mut app, action);
        while let Ok(more) = inbox.try_recv() {
            update(&mut app, more);
        }
        for command in app.take_outbox() {
            engine.send(command);
        }
        if feed.is_none() && app.cluster.server.is_some() {
            feed = Some(start_feed(&engine));
        }
        for order in app.take_remote_orders() {
            if let Some(feed) = &feed {
                feed.command(&order.node, order.token, order.args);
            }
        }
        for request in app.cluster.take_requests() {
            let worker = cluster_worker.get_or_insert_with(|| {
                worker::spawn(
                    worker::session_connector(options.cluster.clone()),
                    WorkerSettings { refresh_every: worker::REFRESH_EVERY, read_only: options.read_only },
                    cluster_actions.clone(),
                    Action::Cluster,
                )
            });
            worker.send(request);
        }
        if app.quit {
            break;
        }
        let started = Instant::now();
        terminal.terminal.draw(|frame| render::render(frame, &app))?;
        if let Some(stats) = &mut stats {
            if stats.record(started.elapsed(), app.snapshot.rows.len()) {
                break;
            }
        }
    }
    drop(feed);
    drop(engine);
    drop(terminal);
    if let (Some(stats), Some(bench)) = (stats, &options.bench) {
        std::fs::write(&bench.report, stats.report())?;
    }
    Ok(())
}

/// Puts the terminal back: cooked mode, main screen, no mouse reporting, visible cursor. Safe to call twice.
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen, crossterm::cursor::Show);
    let _ = io::stdout().flush();
}

fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// The terminal in dashboard mode; restored when dropped.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        enable_raw_mode()?;
        let entered = execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(mut terminal) => {
                terminal.hide_cursor()?;
                terminal.clear()?;
                Ok(TerminalGuard { terminal })
            }
            Err(error) => {
                restore_terminal();
                Err(error)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Reads terminal events on their own thread: key presses (not releases or repeats of a release), clicks, wheel
/// turns and resizes become actions; pointer motion is dropped.
fn spawn_input_thread(actions: Sender<Action>) {
    let _ = std::thread::Builder::new().name("faultline-input".into()).spawn(move || loop {
        let action = match event::read() {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => Action::Key(key),
            Ok(Event::Mouse(mouse))
                if matches!(
                    mouse.kind,
                    MouseEventKind::Down(MouseButton::Left) | MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
                ) =>
            {
                Action::Mouse(mouse)
            }
            Ok(Event::Resize(width, height)) => Action::Resize(width, height),
            Ok(_) => continue,
            Err(_) => return,
        };
        if actions.send(action).is_err() {
            return;
        }
    });
}

/// Frame times and CPU use of a benchmark run.
struct BenchStats {
    started: Instant,
    warm_up: Duration,
    seconds: f64,
    cpu_at_start: Option<u64>,
    measuring_since: Option<Instant>,
    frames: Vec<Duration>,
    processes: usize,
}

impl BenchStats {
    fn new(seconds: f64) -> BenchStats {
        BenchStats {
            started: Instant::now(),
            warm_up: Duration::from_secs(2),
            seconds,
            cpu_at_start: None,
            measuring_since: None,
            frames: Vec::new(),
            processes: 0,
        }
    }

    /// Records one frame; `true` when the run is over.
    fn record(&mut self, frame: Duration, processes: usize) -> bool {
        if self.started.elapsed() < self.warm_up {
            return false;
        }
        let since = *self.measuring_since.get_or_insert_with(|| {
            self.cpu_at_start = cpu_ticks();
            Instant::now()
        });
        self.frames.push(frame);
        self.processes = processes;
        since.elapsed().as_secs_f64() >= self.seconds
    }

    fn report(&self) -> String {
        let mut sorted = self.frames.clone();
        sorted.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        let wall = self.measuring_since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let cpu_s = match (self.cpu_at_start, cpu_ticks()) {
            (Some(start), Some(end)) => end.saturating_sub(start) as f64 / clock_ticks_per_second(),
            _ => f64::NAN,
        };
        let mean =
            if sorted.is_empty() { 0.0 } else { sorted.iter().map(|d| ms(*d)).sum::<f64>() / sorted.len() as f64 };
        format!(
            "processes {}\nframes {}\nseconds {wall:.2}\nframes_per_second {:.2}\nframe_ms_mean {mean:.3}\nframe_ms_p50 {:.3}\n\
             frame_ms_p99 {:.3}\nframe_ms_max {:.3}\ncpu_seconds {cpu_s:.3}\ncpu_percent_of_one_core {:.2}\n",
            self.processes,
            sorted.len(),
            sorted.len() as f64 / wall.max(1e-9),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(sorted.last().copied().unwrap_or_default()),
            cpu_s * 100.0 / wall.max(1e-9),
        )
    }
}

/// utime + stime of this process (all threads), in clock ticks, from `/proc/self/stat`.
fn cpu_ticks() -> Option<u64> {
    use shm_proto::process::stat_field;
    Some(stat_field("self", 14)? + stat_field("self", 15)?)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on (the kernel ABI fixes USER_HZ at 100).
fn clock_ticks_per_second() -> f64 {
    100.0
}
