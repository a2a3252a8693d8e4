//! The shim's process-wide state: an atomic init state machine, the segment pointer, and the per-thread context.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use shm_proto::config::{self, LogLevel, StatsInterval};
use shm_proto::layout::{Site, COUNTER_STRIPES, MAX_HOOKS};
use shm_proto::node_policy::Layered;
use shm_proto::pod::PodIdentity;
use shm_proto::segment::{self, Created, Identity};
use shm_proto::{codes, Decision, Kind, Segment, SegmentMap, Strategy, ThreadCtx};

use crate::thread::ThreadState;

/// What a shim declares about itself.
pub struct ShimSpec {
    /// The segment kind.
    pub kind: Kind,
    /// Hook names; a hook's index in this table is its id everywhere (counters, arm mask, ring).
    pub hooks: &'static [&'static str],
    /// Which hooks are armed by default.
    pub default_armed: fn(usize) -> bool,
}

const UNINIT: u8 = 0;
const INITIALISING: u8 = 1;
const READY: u8 = 2;

/// One per shim library, in a `static`.
pub struct Runtime {
    spec: &'static ShimSpec,
    state: AtomicU8,
    segment: AtomicPtr<Segment>,
    /// The mapping behind `segment` (leaked, never unmapped), for the clean-up at exit.
    map: AtomicPtr<SegmentMap>,
    log: AtomicU8,
    /// The `CLOCK_MONOTONIC` time from which the next stats line may be written (see [`Runtime::stats_line`]).
    stats_next_ns: AtomicU64,
    /// The process's call count at the last stats line (for intervals counted in calls).
    stats_calls_at: AtomicU64,
}

/// The shortest time between two stats lines, whatever the interval asks.
const STATS_MIN_PERIOD_NS: u64 = 1_000_000_000;
/// How soon an interval counted in calls is looked at again when too few calls were made.
const STATS_RECHECK_NS: u64 = 10_000_000;

/// The runtime that `pthread_atfork` re-initialises in a child (one per shim library: each has its own statics).
static FORK_RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());

/// Clears the calling thread's in-call flag when the intercepted call returns.
/// (`&Cell` is not `Send`: the guard cannot leave the thread.)
pub struct CallGuard(&'static Cell<bool>);

impl Drop for CallGuard {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// What an export does with a call before anything else (see [`Runtime::fast`]).
pub enum Fast {
    /// Call the real function and return what it returns (faults off here, or a nested call).
    Forward,
    /// Call the real function, then drop the guard: a counted outermost call that passes.
    ForwardGuarded(CallGuard),
    /// Take the full path: [`Runtime::enter`] and the decision it returns.
    Intercept,
}

/// The decision for one intercepted call; keep it alive across the real call (it holds the reentrancy guard).
pub struct Entered {
    decision: Decision,
    hook: usize,
    runtime: &'static Runtime,
    _guard: Option<CallGuard>,
}

impl Entered {
    /// Where a fault of this call surfaces (`Post` for a call that is not faulted).
    #[inline]
    pub fn site(&self) -> Site {
        match self.decision {
            Decision::Fault { site, .. } => site,
            _ => Site::Post,
        }
    }

    /// Performs any delay, then returns the code to inject instead of calling the real function, if any.
    #[inline]
    pub fn fault(&self) -> Option<i32> {
        match self.decision {
            Decision::Pass => None,
            Decision::Delay { us } => {
                crate::sleep_us(us);
                None
            }
            Decision::Fault { code, delay_us, .. } => {
                if delay_us > 0 {
                    crate::sleep_us(delay_us);
                }
                self.runtime.log_fault(self.hook, code);
                Some(code)
            }
        }
    }
}

impl Runtime {
    /// A runtime for `spec`; call [`Runtime::init`] from the library's constructor.
    pub const fn new(spec: &'static ShimSpec) -> Self {
        Runtime {
            spec,
            state: AtomicU8::new(UNINIT),
            segment: AtomicPtr::new(std::ptr::null_mut()),
            map: AtomicPtr::new(std::ptr::null_mut()),
            log: AtomicU8::new(0),
            stats_next_ns: AtomicU64::new(0),
            stats_calls_at: AtomicU64::new(0),
        }
    }

    /// The segment, once initialised.
    pub fn segment(&self) -> Option<&Segment> {
        let ptr = self.segment.load(Acquire);
        // SAFETY: a non-null pointer always refers to a leaked, never-unmapped SegmentMap's segment.
        (!ptr.is_null()).then(|| unsafe { &*ptr })
    }

    /// Whether this thread is inside an intercepted call (the library calling its own public API from inside one,
    /// or a shim's own bookkeeping): such calls pass straight through.
    #[inline]
    pub fn in_call(&self) -> bool {
        ThreadState::current().in_call.get()
    }

    /// Whether faults are enabled: what a disabled call pays before forwarding (two loads).
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        let ptr = self.segment.load(Acquire);
        // SAFETY: see `segment`.
        !ptr.is_null() && unsafe { &*ptr }.enabled()
    }

    /// The part of an enabled call that an export runs inline: a nested call forwards straight away, and an
    /// outermost call that passes without anything rare ([`Segment::try_pass`]) is counted and forwarded under
    /// the reentrancy guard. Anything else changes nothing and answers [`Fast::Intercept`]. No calls, no stores
    /// beyond the in-call flag, the counter and the thread's RNG.
    #[inline(always)]
    pub fn fast(&'static self, hook: usize, size: u64) -> Fast {
        let Some(segment) = self.segment() else { return Fast::Intercept };
        let state = ThreadState::current();
        if state.in_call.replace(true) {
            return Fast::Forward;
        }
        // From here the in-call flag is ours (a signal handler's call forwards above), so is the context.
        if std::ptr::eq(state.segment.get(), segment) {
            // SAFETY: the outermost call of this thread holds the in-call flag: no other reference to the context.
            let ctx = unsafe { &mut *state.ctx.get() };
            if segment.try_pass(hook, ctx, size) {
                return Fast::ForwardGuarded(CallGuard(&state.in_call));
            }
        }
        state.in_call.set(false);
        Fast::Intercept
    }

    /// Decides one intercepted call of `hook` with size argument `size` while enabled. One thread-local access;
    /// nested calls (the library calling its own public API) pass straight through.
    #[inline(always)]
    pub fn enter(&'static self, hook: usize, size: u64) -> Entered {
        let pass = Entered { decision: Decision::Pass, hook, runtime: self, _guard: None };
        let Some(segment) = self.segment() else { return pass };
        let Some((state, guard)) = outermost() else { return pass };
        let decision = segment.on_call(hook, self.registered(state, segment), size);
        // The stats line is asked for through the control block (at start-up or later, by a tool), and checked here,
        // on the general path only: every call the fast path declines comes here, including each thread's heartbeat
        // call (one in `HEARTBEAT_EVERY` of a hook), so a process whose calls all pass still writes its line, while
        // a passing fast-path call pays nothing. Off, this is one relaxed load of a control-block line the general
        // path reads anyway. No thread or timer is started in the host process (none of its own threads, no signal
        // handler): the line is written by a calling thread when due, so it needs nothing that could outlive a fork
        // or race the application's exit.
        if segment.control.stats_interval.load(Relaxed) != 0 {
            self.stats_line(segment);
        }
        Entered { decision, hook, runtime: self, _guard: Some(guard) }
    }

    /// An intercepted call that a shim has already decided to fail with `code` without consulting the strategy
    /// (e.g. a device that stays dead once faulted). It is counted as a call and a fault and recorded like any
    /// other, exactly; a nested call still passes straight through. The counts go to the shared last stripe
    /// (an atomic add): readers sum all stripes, so totals stay exact.
    #[cold]
    pub fn enter_forced(&'static self, hook: usize, size: u64, code: i32, site: Site) -> Entered {
        let pass = Entered { decision: Decision::Pass, hook, runtime: self, _guard: None };
        let Some(segment) = self.segment() else { return pass };
        if hook >= MAX_HOOKS {
            return pass;
        }
        let Some((state, guard)) = outermost() else { return pass };
        let ctx = self.registered(state, segment);
        let counters = &segment.stripes[COUNTER_STRIPES - 1].hooks[hook];
        counters.calls.fetch_add(1, Relaxed);
        counters.faults.fetch_add(1, Relaxed);
        segment.header.heartbeat_ns.store(shm_proto::clock::monotonic_ns(), Relaxed);
        if segment.control.recording.load(Relaxed) != 0 {
            segment.ring.push(ctx.lane(), segment.ring.stamp(), hook as u16, Some(site), ctx.tid(), code, size);
        }
        Entered { decision: Decision::Fault { code, delay_us: 0, site }, hook, runtime: self, _guard: Some(guard) }
    }

    /// An intercepted call that is not subject to injection at all (e.g. outside the device a shim targets): it
    /// is neither counted nor recorded, but holds the reentrancy guard like any intercepted call, so the calls the
    /// library makes from inside it pass straight through too.
    #[inline]
    pub fn enter_exempt(&'static self, hook: usize) -> Entered {
        let guard = outermost().map(|(_, guard)| guard);
        Entered { decision: Decision::Pass, hook, runtime: self, _guard: guard }
    }

    /// This thread's decision context, registered with `segment` on the thread's first call (and again after a
    /// fork, whose child has a segment of its own). Call only as the outermost call (`in_call` set), which makes
    /// the context exclusively ours.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // exclusive by the in-call flag, see the SAFETY note
    fn registered(&self, state: &ThreadState, segment: &Segment) -> &mut ThreadCtx {
        if !std::ptr::eq(state.segment.get(), segment) {
            register(state, segment);
        }
        // SAFETY: only this thread reaches its own state, and only its outermost intercepted call (the caller holds
        // the in-call flag) borrows the context, so no other reference to it exists while this one lives.
        unsafe { &mut *state.ctx.get() }
    }

    /// Creates the segment from the environment. Idempotent; call from the library constructor.
    #[cold]
    pub fn init(&'static self) {
        self.init_with(|name| std::env::var(name).ok());
    }

    /// Like [`Runtime::init`], from the environment `env` overlaid by a node policy file (`settings`): what the
    /// file's loading had to say goes to stderr (its notes only at `FAULTLINE_LOG=debug`).
    #[cold]
    pub fn init_layered(&'static self, settings: &Layered, env: impl Fn(&str) -> Option<String> + Copy) {
        for warning in &settings.file.warnings {
            crate::log!("{warning}");
        }
        self.init_with(|name| settings.var(name, env));
        if settings.var("FAULTLINE_LOG", env).is_some_and(|level| matches!(level.trim(), "debug" | "2")) {
            for note in &settings.file.notes {
                crate::log!("{note}");
            }
        }
    }

    /// Like [`Runtime::init`], with the `FAULTLINE_*` start-up settings looked up through `var` instead of the
    /// process environment (a shim that layers another source over it).
    #[cold]
    pub fn init_with(&'static self, var: impl Fn(&str) -> Option<String>) {
        if self.state.compare_exchange(UNINIT, INITIALISING, Acquire, Relaxed).is_err() {
            return;
        }
        let startup = config::startup_from_env(self.spec.kind, self.spec.hooks, self.spec.default_armed, var);
        self.log.store(startup.log as u8, Relaxed);
        for warning in &startup.warnings {
            crate::log!("{warning}");
        }
        if startup.seed_configured && startup.log >= LogLevel::Debug {
            crate::log!("configured through UCX_FAULT_*: the seed injector's defaults where FAULTLINE_* says nothing");
        }
        self.create_segment(&startup.strategy, startup.default_arm_mask, startup.stats.to_raw());
        FORK_RUNTIME.store(self as *const Runtime as *mut Runtime, Release);
        // SAFETY: registering a plain `extern "C" fn()` child handler has no preconditions.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        self.state.store(READY, Release);
    }

    fn create_segment(&self, strategy: &Strategy, default_arm_mask: [u64; MAX_HOOKS / 64], stats_interval: u32) {
        let exe = std::env::current_exe().ok();
        let exe_name = exe.as_deref().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("?");
        // Start-up only: which pod this is (environment, then the cgroup), read once into the segment.
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok();
        let pod = PodIdentity::detect(|name| std::env::var(name).ok(), cgroup.as_deref());
        let identity = Identity {
            kind: self.spec.kind,
            pid: std::process::id(),
            pid_ns: shm_proto::process::own_pid_ns(),
            start_time_ticks: segment::start_time_ticks("self").unwrap_or(0),
            exe_name,
            hooks: self.spec.hooks,
            default_arm_mask,
            pod: &pod,
        };
        match SegmentMap::create(&identity, strategy) {
            Ok((map, created)) => {
                if let Created::Private(reason) = &created {
                    crate::log!("{reason}");
                } else if self.log.load(Relaxed) >= LogLevel::Debug as u8 {
                    crate::log!("{} shim ready: {created:?}", self.spec.kind.name());
                }
                map.segment().control.stats_interval.store(stats_interval, Relaxed);
                let map: &'static SegmentMap = Box::leak(Box::new(map));
                self.map.store(map as *const SegmentMap as *mut SegmentMap, Release);
                self.segment.store(map.segment() as *const Segment as *mut Segment, Release);
            }
            Err(e) => crate::log!("cannot create a segment ({e}); faults are off in this process"),
        }
    }

    /// In a forked child: a segment of its own, starting from the parent's current strategy. Threads re-register
    /// on their next call because the segment changes; until it is created (or if it cannot be), the child has
    /// none and its calls pass untouched: it never writes into its parent's segment.
    fn reinit_after_fork(&self) {
        let Some(parent) = self.segment() else { return };
        let inherited = parent.control.snapshot();
        let default_arm_mask = std::array::from_fn(|i| parent.header.default_arm_mask[i].load(Relaxed));
        let stats_interval = parent.control.stats_interval.load(Relaxed);
        self.segment.store(std::ptr::null_mut(), Release);
        self.map.store(std::ptr::null_mut(), Release);
        self.stats_next_ns.store(0, Relaxed);
        self.stats_calls_at.store(0, Relaxed);
        match inherited {
            Some(strategy) => self.create_segment(&strategy, default_arm_mask, stats_interval),
            None => crate::log!("the parent's strategy was being changed at fork; faults are off in this child"),
        }
    }

    /// At the process's normal exit (the library's destructor): a segment nobody ever used — no tool changed it,
    /// faults and recording were never on — is removed, so short-lived processes leave nothing behind.
    #[cold]
    pub fn at_exit(&self) {
        let ptr = self.map.load(Acquire);
        if ptr.is_null() {
            return;
        }
        // SAFETY: a non-null `map` always points to a leaked, never-freed SegmentMap.
        let map = unsafe { &*ptr };
        if map.remove_if_unused() && self.log.load(Relaxed) >= LogLevel::Debug as u8 {
            crate::log!("{} shim: unused segment removed at exit", self.spec.kind.name());
        }
    }

    /// Writes the periodic stats line if it is due: the process's calls and faults, and each called hook's. At
    /// most one line a second (and one per interval), by whichever thread claims it first; an interval counted in
    /// calls (the seed's unit) writes once that many more calls were counted, looking every 10 ms at most (summing
    /// the counters is the costly part). Reads the clock (vDSO), formats on the stack, one `write(2)` per line.
    #[cold]
    #[inline(never)]
    fn stats_line(&self, segment: &Segment) {
        let interval = StatsInterval::from_raw(segment.control.stats_interval.load(Relaxed));
        let period_ns = match interval {
            StatsInterval::Off => return,
            StatsInterval::Seconds(seconds) => u64::from(seconds).saturating_mul(1_000_000_000),
            StatsInterval::Calls(_) => STATS_MIN_PERIOD_NS,
        }
        .max(STATS_MIN_PERIOD_NS);
        let now = shm_proto::clock::monotonic_ns();
        let next = self.stats_next_ns.load(Relaxed);
        if now < next
            || self.stats_next_ns.compare_exchange(next, now.saturating_add(period_ns), Relaxed, Relaxed).is_err()
        {
            return;
        }
        let mut totals = [(0u64, 0u64); MAX_HOOKS];
        let hooks = self.spec.hooks.len().min(MAX_HOOKS);
        for (hook, total) in totals.iter_mut().enumerate().take(hooks) {
            *total = segment.hook_totals(hook);
        }
        let (calls, faults) =
            totals.iter().fold((0u64, 0u64), |(c, f), (hc, hf)| (c.saturating_add(*hc), f.saturating_add(*hf)));
        if let StatsInterval::Calls(every) = interval {
            if calls < self.stats_calls_at.load(Relaxed).saturating_add(u64::from(every)) {
                // Not yet: look again soon, not a second from now.
                self.stats_next_ns.store(now.saturating_add(STATS_RECHECK_NS), Relaxed);
                return;
            }
        }
        self.stats_calls_at.store(calls, Relaxed);
        let percent = if calls == 0 { 0.0 } else { faults as f64 * 100.0 / calls as f64 };
        let per_hook = PerHook { names: &self.spec.hooks[..hooks], totals: &totals[..hooks] };
        crate::log!("[STATS] {calls} calls, {faults} faults ({percent:.2}%){per_hook}");
    }

    #[cold]
    fn log_fault(&self, hook: usize, code: i32) {
        if self.log.load(Relaxed) >= LogLevel::Faults as u8 {
            let name = self.spec.hooks.get(hook).copied().unwrap_or("?");
            let code_name = codes::name_of(self.spec.kind, code).unwrap_or("?");
            crate::log!("[FAULT] INJECTED: {name} {code_name} = {code}");
        }
    }
}

/// The stats line's per-hook part: `; put 3/100, get 5/98` for every hook called so far (faults/calls).
struct PerHook<'a> {
    names: &'a [&'static str],
    totals: &'a [(u64, u64)],
}

impl std::fmt::Display for PerHook<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut separator = ";";
        for (name, (calls, faults)) in self.names.iter().zip(self.totals).filter(|(_, (calls, _))| *calls > 0) {
            write!(f, "{separator} {} {faults}/{calls}", config::short_hook_name(name))?;
            separator = ",";
        }
        Ok(())
    }
}

/// This thread's state with its in-call flag set, and the guard that clears it; `None` for a nested call.
#[inline(always)]
fn outermost() -> Option<(&'static ThreadState, CallGuard)> {
    let state = ThreadState::current();
    if state.in_call.replace(true) {
        return None;
    }
    // `in_call` is set before `ctx` is borrowed, so a signal handler calling in here passes through above.
    Some((state, CallGuard(&state.in_call)))
}

/// Registers the calling thread with `segment` (its first intercepted call, or its first in a forked child).
#[cold]
#[inline(never)]
fn register(state: &ThreadState, segment: &Segment) {
    // SAFETY: called from `Runtime::registered`, under the same exclusivity (outermost call of this thread).
    unsafe { *state.ctx.get() = ThreadCtx::register(segment, current_tid()) };
    state.segment.set(segment);
}

#[cold]
fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

extern "C" fn after_fork_in_child() {
    let ptr = FORK_RUNTIME.load(Acquire);
    if !ptr.is_null() {
        // SAFETY: FORK_RUNTIME only ever holds a `&'static Runtime`.
        unsafe { &*ptr }.reinit_after_fork();
    }
}
