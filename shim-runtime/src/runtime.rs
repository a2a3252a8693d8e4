//! The shim's process-wide state: an atomic init state machine, the segment pointer, and the per-thread context.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use shm_proto::config::{self, LogLevel};
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

#[derive(Clone, Copy)]
struct ThreadSlot {
    in_call: bool,
    generation: u32,
    ctx: Option<ThreadCtx>,
}

thread_local! {
    static THREAD: Cell<ThreadSlot> = const { Cell::new(ThreadSlot { in_call: false, generation: 0, ctx: None }) };
}

/// The runtime that `pthread_atfork` re-initialises in a child (one per shim library: each has its own statics).
static FORK_RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());

/// Clears the calling thread's in-call flag when the intercepted call returns.
pub struct CallGuard(());

impl Drop for CallGuard {
    fn drop(&mut self) {
        let _ = THREAD.try_with(|cell| {
            let mut slot = cell.get();
            slot.in_call = false;
            cell.set(slot);
        });
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

    /// Decides one intercepted call of `hook` with size argument `size`. Disabled: one load, no guard.
    #[inline(always)]
    pub fn enter(&'static self, hook: usize, size: u64) -> Entered {
        let ptr = self.segment.load(Acquire);
        if !ptr.is_null() {
            // SAFETY: see `segment`.
            let segment = unsafe { &*ptr };
            if segment.enabled() {
                return self.enter_enabled(segment, hook, size);
            }
        }
        Entered { decision: Decision::Pass, hook, runtime: self, _guard: None }
    }

    #[inline]
    fn enter_enabled(&'static self, segment: &Segment, hook: usize, size: u64) -> Entered {
        let pass = Entered { decision: Decision::Pass, hook, runtime: self, _guard: None };
        let generation = self.generation.load(Relaxed);
        THREAD
            .try_with(|cell| {
                let mut slot = cell.get();
                if slot.in_call {
                    return None; // the library calling its own public API: pass straight through
                }
                let mut ctx = match slot.ctx {
                    Some(ctx) if slot.generation == generation => ctx,
                    _ => register_thread(segment),
                };
                let decision = segment.on_call(hook, &mut ctx, size);
                slot = ThreadSlot { in_call: true, generation, ctx: Some(ctx) };
                cell.set(slot);
                Some(decision)
            })
            .ok()
            .flatten()
            .map_or(pass, |decision| Entered { decision, hook, runtime: self, _guard: Some(CallGuard(())) })
    }

    /// Creates the segment from the environment. Idempotent; call from the library constructor.
    #[cold]
    pub fn init(&'static self) {
        if self.state.compare_exchange(UNINIT, INITIALISING, Acquire, Relaxed).is_err() {
            return;
        }
        let startup = config::startup_from_env(self.spec.kind, self.spec.hooks, self.spec.default_armed, |name| {
            std::env::var(name).ok()
        });
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

#[cold]
fn register_thread(segment: &Segment) -> ThreadCtx {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    ThreadCtx::register(segment, tid)
}

extern "C" fn after_fork_in_child() {
    let ptr = FORK_RUNTIME.load(Acquire);
    if !ptr.is_null() {
        // SAFETY: FORK_RUNTIME only ever holds a `&'static Runtime`.
        unsafe { &*ptr }.reinit_after_fork();
    }
}
