//! The shim's process-wide state: an atomic init state machine, the segment pointer, and the per-thread context.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use shm_proto::config::{self, LogLevel};
use shm_proto::layout::{COUNTER_STRIPES, MAX_HOOKS};
use shm_proto::segment::{self, Created, Identity};
use shm_proto::{codes, Decision, Kind, Segment, SegmentMap, Strategy, ThreadCtx};

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
    /// Bumped in a forked child so threads re-register with the child's segment.
    generation: AtomicU32,
    log: AtomicU8,
}

/// Per-thread state, mutated in place after one thread-local lookup per call.
struct ThreadState {
    /// Set while an intercepted call of this thread is inside the real function (or deciding).
    in_call: Cell<bool>,
    /// The runtime generation `ctx` was registered under (a forked child starts a new one).
    generation: Cell<u32>,
    /// The kernel thread id `ctx` was registered with (for records made outside the decision engine).
    tid: Cell<u32>,
    ctx: UnsafeCell<Option<ThreadCtx>>,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState {
            in_call: Cell::new(false),
            generation: Cell::new(0),
            tid: Cell::new(0),
            ctx: UnsafeCell::new(None),
        }
    };
}

/// The runtime that `pthread_atfork` re-initialises in a child (one per shim library: each has its own statics).
static FORK_RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());

/// Clears the calling thread's in-call flag when the intercepted call returns.
pub struct CallGuard(*const Cell<bool>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        // SAFETY: points at this thread's `in_call`, which outlives the call (no TLS destructor is registered for
        // ThreadState: it needs no drop), and the guard never leaves the thread.
        unsafe { (*self.0).set(false) };
    }
}

/// The decision for one intercepted call; keep it alive across the real call (it holds the reentrancy guard).
pub struct Entered {
    decision: Decision,
    hook: usize,
    runtime: &'static Runtime,
    _guard: Option<CallGuard>,
}

impl Entered {
    /// Performs any delay, then returns the code to inject instead of calling the real function, if any.
    #[inline]
    pub fn fault(&self) -> Option<i32> {
        match self.decision {
            Decision::Pass => None,
            Decision::Delay { us } => {
                crate::sleep_us(us);
                None
            }
            Decision::Fault { code, delay_us } => {
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
            generation: AtomicU32::new(1),
            log: AtomicU8::new(0),
        }
    }

    /// The segment, once initialised.
    pub fn segment(&self) -> Option<&Segment> {
        let ptr = self.segment.load(Acquire);
        // SAFETY: a non-null pointer always refers to a leaked, never-unmapped SegmentMap's segment.
        (!ptr.is_null()).then(|| unsafe { &*ptr })
    }

    /// Whether faults are enabled: what a disabled call pays before forwarding (two loads).
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        let ptr = self.segment.load(Acquire);
        // SAFETY: see `segment`.
        !ptr.is_null() && unsafe { &*ptr }.enabled()
    }

    /// Decides one intercepted call of `hook` with size argument `size` while enabled. One thread-local lookup;
    /// nested calls (the library calling its own public API) pass straight through.
    #[inline]
    pub fn enter(&'static self, hook: usize, size: u64) -> Entered {
        let pass = Entered { decision: Decision::Pass, hook, runtime: self, _guard: None };
        let Some(segment) = self.segment() else { return pass };
        let Some((state, guard)) = outermost() else { return pass };
        // SAFETY: exclusive: only this thread, and only outside any nested call (`outermost` set in_call).
        let ctx = unsafe { &mut *state.ctx.get() };
        let decision = match self.registered(ctx, state, segment) {
            Some(ctx) => segment.on_call(hook, ctx, size),
            None => Decision::Pass,
        };
        Entered { decision, hook, runtime: self, _guard: Some(guard) }
    }

    /// An intercepted call that a shim has already decided to fail with `code` without consulting the strategy
    /// (e.g. a device that stays dead once faulted). It is counted as a call and a fault and recorded like any
    /// other, exactly; a nested call still passes straight through. The counts go to the shared last stripe
    /// (an atomic add): readers sum all stripes, so totals stay exact.
    #[cold]
    pub fn enter_forced(&'static self, hook: usize, size: u64, code: i32) -> Entered {
        let pass = Entered { decision: Decision::Pass, hook, runtime: self, _guard: None };
        let Some(segment) = self.segment() else { return pass };
        if hook >= MAX_HOOKS {
            return pass;
        }
        let Some((state, guard)) = outermost() else { return pass };
        // SAFETY: exclusive: only this thread, and only outside any nested call (`outermost` set in_call).
        let ctx = unsafe { &mut *state.ctx.get() };
        let _ = self.registered(ctx, state, segment);
        let counters = &segment.stripes[COUNTER_STRIPES - 1].hooks[hook];
        counters.calls.fetch_add(1, Relaxed);
        counters.faults.fetch_add(1, Relaxed);
        let now = shm_proto::call::monotonic_ns();
        segment.header.heartbeat_ns.store(now, Relaxed);
        if segment.control.recording.load(Relaxed) != 0 {
            segment.ring.push(now, hook as u16, true, state.tid.get(), code, size);
        }
        Entered { decision: Decision::Fault { code, delay_us: 0 }, hook, runtime: self, _guard: Some(guard) }
    }

    /// An intercepted call that is not subject to injection at all (e.g. outside the device a shim targets): it
    /// is neither counted nor recorded, but holds the reentrancy guard like any intercepted call, so the calls the
    /// library makes from inside it pass straight through too.
    #[inline]
    pub fn enter_exempt(&'static self, hook: usize) -> Entered {
        let guard = outermost().map(|(_, guard)| guard);
        Entered { decision: Decision::Pass, hook, runtime: self, _guard: guard }
    }

    /// `ctx` (this thread's decision context), registered with `segment` on the thread's first call (and again
    /// after a fork).
    #[inline]
    fn registered<'a>(
        &self,
        ctx: &'a mut Option<ThreadCtx>,
        state: &ThreadState,
        segment: &Segment,
    ) -> Option<&'a mut ThreadCtx> {
        let generation = self.generation.load(Relaxed);
        if ctx.is_none() || state.generation.get() != generation {
            let tid = current_tid();
            *ctx = Some(ThreadCtx::register(segment, tid));
            state.tid.set(tid);
            state.generation.set(generation);
        }
        ctx.as_mut()
    }

    /// Creates the segment from the environment. Idempotent; call from the library constructor.
    #[cold]
    pub fn init(&'static self) {
        self.init_with(|name| std::env::var(name).ok());
    }

    /// Like [`Runtime::init`], with the `FAULTLINE_*` start-up settings looked up through `var` instead of the
    /// process environment (a shim that layers another source, such as a node policy file, over it).
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
        self.create_segment(&startup.strategy);
        FORK_RUNTIME.store(self as *const Runtime as *mut Runtime, Release);
        // SAFETY: registering a plain `extern "C" fn()` child handler has no preconditions.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        self.state.store(READY, Release);
    }

    fn create_segment(&self, strategy: &Strategy) {
        let exe = std::env::current_exe().ok();
        let exe_name = exe.as_deref().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("?");
        let identity = Identity {
            kind: self.spec.kind,
            pid: std::process::id(),
            start_time_ticks: segment::start_time_ticks("self").unwrap_or(0),
            exe_name,
            hooks: self.spec.hooks,
            default_arm_mask: Strategy::defaults(&[], self.spec.default_armed).arm_mask,
        };
        match SegmentMap::create(&identity, strategy) {
            Ok((map, created)) => {
                if let Created::Private(reason) = &created {
                    crate::log!("{reason}");
                } else if self.log.load(Relaxed) >= LogLevel::Debug as u8 {
                    crate::log!("{} shim ready: {created:?}", self.spec.kind.name());
                }
                let map: &'static SegmentMap = Box::leak(Box::new(map));
                self.segment.store(map.segment() as *const Segment as *mut Segment, Release);
            }
            Err(e) => crate::log!("cannot create a segment ({e}); faults are off in this process"),
        }
    }

    /// In a forked child: a segment of its own, starting from the parent's current strategy.
    fn reinit_after_fork(&self) {
        let inherited = self.segment().and_then(|s| s.control.snapshot());
        self.generation.fetch_add(1, Relaxed);
        if let Some(strategy) = inherited {
            self.create_segment(&strategy);
        }
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

/// This thread's state with its in-call flag set, and the guard that clears it; `None` for a nested call (or
/// while the thread's storage is being torn down).
#[inline]
fn outermost() -> Option<(&'static ThreadState, CallGuard)> {
    let state = THREAD.try_with(|state| state as *const ThreadState).ok()?;
    // SAFETY: this thread's own state, alive for the thread's lifetime (no destructor: it needs no drop); only
    // this thread touches it, and the reference never leaves the thread (ThreadState is not Sync).
    let state: &'static ThreadState = unsafe { &*state };
    if state.in_call.replace(true) {
        return None;
    }
    // `in_call` is set before `ctx` is borrowed, so a signal handler calling in here passes through above.
    Some((state, CallGuard(&state.in_call)))
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
