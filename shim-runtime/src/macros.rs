//! The two macros a shim is written with: one hook table, and one thin exported function per hook.

/// Declares a shim's hook table once: the `Hook` ids, the names published in the segment (`HOOKS`), and the real
/// functions (`REAL`), looked up in loaded libraries whose file names start with one of `libraries`.
#[macro_export]
macro_rules! hook_table {
    (libraries: $libraries:expr; $($id:ident => $name:literal),* $(,)?) => {
        /// Hook ids: indexes into [`HOOKS`], the segment's counters and arm mask.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Hook { $($id),* }
        /// Names of the intercepted functions, in [`Hook`] order.
        pub const HOOKS: &[&str] = &[$($name),*];
        static REAL: [$crate::RealFn; HOOKS.len()] = [$($crate::RealFn::new($crate::cstr(concat!($name, "\0").as_bytes()), $libraries)),*];
    };
}

/// One exported hook: enter (count, decide, record), then return `$fail(code)` for an injected fault, or forward
/// to the real function (`$fail($missing)` if it cannot be found). Not exported under `cfg(test)`, so unit tests
/// do not interpose on themselves.
///
/// Three layers, each a tail jump into the next (they share the export's signature): the export is the disabled
/// check (two loads and a tail jump to the real function); `enabled` is the inline fast path of an enabled call
/// ([`Runtime::fast`](crate::Runtime::fast)); `intercepted` is everything else.
#[macro_export]
macro_rules! hook {
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr, missing = $missing:expr) => {
        #[doc = concat!("Intercepts `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The caller upholds the real function's contract; arguments are forwarded unchanged.
        #[cfg_attr(not(test), no_mangle)]
        #[allow(non_snake_case)] // the C API's own names
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            type Real = unsafe extern "C" fn($($ty),*) -> $ret;
            let real = REAL[Hook::$id as usize].cached();
            if !real.is_null() && !RUNTIME.enabled() {
                // SAFETY: `real` is the non-null address of the real function of this name, whose C signature
                // `Real` mirrors; the arguments are the caller's, unchanged. A tail call: nothing runs after it.
                return unsafe { std::mem::transmute::<*mut std::ffi::c_void, Real>(real)($($arg),*) };
            }
            // Separate from the disabled check above so that no register is saved before it.
            #[inline(never)]
            #[allow(clippy::too_many_arguments)] // the C signature
            unsafe extern "C" fn enabled($($arg: $ty),*) -> $ret {
                let real = REAL[Hook::$id as usize].cached();
                if !real.is_null() {
                    // SAFETY: as in the export: the real function, the caller's arguments.
                    let real = unsafe { std::mem::transmute::<*mut std::ffi::c_void, Real>(real) };
                    match RUNTIME.fast(Hook::$id as usize, $size as u64) {
                        // SAFETY: as above.
                        $crate::Fast::Forward => return unsafe { real($($arg),*) },
                        $crate::Fast::ForwardGuarded(guard) => {
                            // SAFETY: as above; the guard is dropped after the real call returns.
                            let status = unsafe { real($($arg),*) };
                            drop(guard);
                            return status;
                        }
                        $crate::Fast::Intercept => {}
                    }
                }
                // SAFETY: forwards the caller's arguments under the same contract.
                unsafe { intercepted($($arg),*) }
            }
            #[inline(never)]
            #[allow(clippy::too_many_arguments)] // the C signature
            unsafe extern "C" fn intercepted($($arg: $ty),*) -> $ret {
                let real = REAL[Hook::$id as usize].get();
                if !real.is_null() && !RUNTIME.enabled() {
                    // SAFETY: as in the export (reached here while the real function was still unresolved).
                    return unsafe { std::mem::transmute::<*mut std::ffi::c_void, Real>(real)($($arg),*) };
                }
                let call = RUNTIME.enter(Hook::$id as usize, $size as u64);
                if let Some(code) = call.fault() {
                    return $fail(code);
                }
                if real.is_null() {
                    return $fail($missing);
                }
                // SAFETY: as above; `call` keeps the reentrancy guard alive across the real call.
                unsafe { std::mem::transmute::<*mut std::ffi::c_void, Real>(real)($($arg),*) }
            }
            // SAFETY: forwards the caller's arguments under the same contract.
            unsafe { enabled($($arg),*) }
        }
    };
}

/// Runs `$runtime.init()` when the library is loaded (an `.init_array` entry), and `$runtime.at_exit()` at the
/// process's normal exit (a `.fini_array` entry), except in unit tests.
/// `constructor!(init = path::to::function)` runs that function instead (a shim that prepares more than the
/// runtime, e.g. reads a policy file, and then calls [`Runtime::init_with`](crate::Runtime::init_with)).
#[macro_export]
macro_rules! constructor {
    (init = $init:path, runtime = $runtime:ident) => {
        #[cfg(not(test))]
        #[used]
        #[link_section = ".init_array"]
        static CONSTRUCTOR: extern "C" fn() = {
            extern "C" fn init() {
                $init();
            }
            init
        };
        $crate::constructor!(@destructor $runtime);
    };
    (@destructor $runtime:ident) => {
        #[cfg(not(test))]
        #[used]
        #[link_section = ".fini_array"]
        static DESTRUCTOR: extern "C" fn() = {
            extern "C" fn fini() {
                $runtime.at_exit();
            }
            fini
        };
    };
    ($runtime:ident) => {
        #[cfg(not(test))]
        #[used]
        #[link_section = ".init_array"]
        static CONSTRUCTOR: extern "C" fn() = {
            extern "C" fn init() {
                $runtime.init();
            }
            init
        };
        $crate::constructor!(@destructor $runtime);
    };
}
