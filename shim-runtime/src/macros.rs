//! The macros a shim is written with: one hook table, one thin exported function per hook (over the skeleton
//! every hook shares), and the load-time constructor.

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

/// What every hook of every shim is made of, whatever its fast paths: the exported function, and a module of
/// the same name holding its layers. `hook!` and the CUDA shim's `cuda_hook!` are built on it.
///
/// The skeleton provides, in that module:
/// - `Real`: the C signature as a function pointer type;
/// - `forward(real, args…)`: calls the real function at `real` (the only place a hook turns an address into a
///   callable pointer, through [`fn_at`](crate::fn_at));
/// - `intercept(real, args…)`: the slow path: `enter` (count, decide, record), then `fault` for an injected code
///   and its [`Site`](shm_proto::layout::Site) (evaluated while the call is entered, with `real` and `forward` in
///   scope: a site that runs the real operation calls it from there), `missing` if `real` is null, or the real
///   call (`after` runs on its result while the call is still entered).
///
/// `layers` are the shim's own items in the module; they must define `pub(crate) unsafe fn export(args…)`, the
/// exported function's body (inlined into it). The export is not `no_mangle` under `cfg(test)`, so unit tests do
/// not interpose on themselves.
#[doc(hidden)]
#[macro_export]
macro_rules! __hook_skeleton {
    (fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     enter = $enter:expr, fault = |$code:ident, $site:ident $(, $real:ident)?| $fault:expr, missing = $missing:expr,
     after = |$status:ident| $after:expr, layers = { $($layers:item)* }) => {
        #[doc = concat!("Intercepts `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The caller upholds the real function's contract; arguments are forwarded unchanged.
        #[cfg_attr(not(test), no_mangle)]
        #[allow(non_snake_case)] // the C API's own names
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: forwards the caller's arguments under the same contract.
            unsafe { $name::export($($arg),*) }
        }

        #[doc = concat!("The layers of the `", stringify!($name), "` hook.")]
        #[allow(non_snake_case)] // named after the function
        #[allow(clippy::too_many_arguments)] // the C signature, plus the real function
        pub(crate) mod $name {
            #[allow(unused_imports)] // what the signature and options name
            use super::*;

            /// The real function's C signature.
            pub(crate) type Real = unsafe extern "C" fn($($ty),*) -> $ret;

            /// Calls the real function `real` with the caller's arguments.
            ///
            /// # Safety
            /// `real` is the non-null address of a function with this hook's C signature (the real function of
            /// this name, or one a symbol lookup handed out for it); the caller upholds that function's contract.
            #[inline(always)]
            unsafe fn forward(real: *mut std::ffi::c_void, $($arg: $ty),*) -> $ret {
                // SAFETY: `Real` mirrors the hook's C signature, and `real` is such a function (this function's
                // contract); the arguments are the caller's, unchanged.
                unsafe { $crate::fn_at::<Real>(real)($($arg),*) }
            }

            /// The slow path: enter the call, then inject, fail for a missing real function, or forward.
            ///
            /// # Safety
            /// `real` is null (not found) or as in `forward`; the caller upholds the real function's contract.
            #[inline(always)]
            unsafe fn intercept(real: *mut std::ffi::c_void, $($arg: $ty),*) -> $ret {
                let call = $enter;
                if let Some($code) = call.fault() {
                    #[allow(unused_variables)] // a hook that fails every site at the call
                    let $site = call.site();
                    $(#[allow(unused_variables)] let $real = real;)?
                    return $fault;
                }
                if real.is_null() {
                    return $missing;
                }
                // SAFETY: `real` is not null, so it is the real function (this function's contract); `call` keeps
                // the reentrancy guard alive across the real call.
                let $status = unsafe { forward(real, $($arg),*) };
                $after;
                drop(call);
                $status
            }

            $($layers)*
        }
    };
}

/// One exported hook: enter (count, decide, record), then return `$fail(code)` for an injected fault, or forward
/// to the real function (`$fail($missing)` if it cannot be found). Not exported under `cfg(test)`, so unit tests
/// do not interpose on themselves.
///
/// Three layers, each a tail jump into the next (they share the export's signature): the export is the disabled
/// check (two loads and a tail jump to the real function); `enabled` is the inline fast path of an enabled call
/// ([`Runtime::fast`](crate::Runtime::fast)); `intercepted` is everything else.
///
/// Two optional parts, for a hook whose faults do more than return a code:
/// - `fault = |code, site, real| expr`: what an injected fault returns instead of `$fail(code)`, evaluated while
///   the call is entered, with `real` the real function's address (null if not found) and `forward` in scope;
/// - `gate = check => gated`: before anything else the export evaluates `check` (one load, say); when true it
///   tail-jumps to a layer that first evaluates `gated` (an `Option`, with the arguments in scope: `Some` is the
///   answer) and otherwise goes on as the export would have. For state a shim keeps beyond a single call (a
///   failed endpoint, a request whose completion it reports), which must hold whether or not faults are enabled.
#[macro_export]
macro_rules! hook {
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr,
     missing = $missing:expr $(, fault = |$code:ident, $site:ident, $real:ident| $fault:expr)?
     $(, gate = $check:expr => $gated:expr)?) => {
        $crate::hook!(@fault $id, fn $name($($arg: $ty),*) -> $ret, size = $size, fail = $fail, missing = $missing,
                      fault = [$(|$code, $site, $real| $fault)?], gate = [$($check => $gated)?]);
    };
    (@fault $id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr,
     missing = $missing:expr, fault = [], gate = [$($gate:tt)*]) => {
        $crate::hook!(@gate $id, fn $name($($arg: $ty),*) -> $ret, size = $size, fail = $fail, missing = $missing,
                      fault = [|code, site, real| $fail(code)], gate = [$($gate)*]);
    };
    (@fault $id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr,
     missing = $missing:expr, fault = [$($fault:tt)+], gate = [$($gate:tt)*]) => {
        $crate::hook!(@gate $id, fn $name($($arg: $ty),*) -> $ret, size = $size, fail = $fail, missing = $missing,
                      fault = [$($fault)+], gate = [$($gate)*]);
    };
    (@gate $id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr,
     missing = $missing:expr, fault = [$($fault:tt)+], gate = []) => {
        $crate::hook!(@full $id, fn $name($($arg: $ty),*) -> $ret, size = $size, fail = $fail, missing = $missing,
                      fault = [$($fault)+], gate = [false => None]);
    };
    (@gate $id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr,
     missing = $missing:expr, fault = [$($fault:tt)+], gate = [$($gate:tt)+]) => {
        $crate::hook!(@full $id, fn $name($($arg: $ty),*) -> $ret, size = $size, fail = $fail, missing = $missing,
                      fault = [$($fault)+], gate = [$($gate)+]);
    };
    (@full $id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, size = $size:expr, fail = $fail:expr,
     missing = $missing:expr, fault = [|$code:ident, $site:ident, $real:ident| $fault:expr],
     gate = [$check:expr => $gated:expr]) => {
        $crate::__hook_skeleton! {
            fn $name($($arg: $ty),*) -> $ret,
            enter = RUNTIME.enter(Hook::$id as usize, $size as u64),
            fault = |$code, $site, $real| $fault,
            missing = $fail($missing),
            after = |status| (),
            layers = {
                /// The disabled check.
                ///
                /// # Safety
                /// As the export's.
                #[inline(always)]
                pub(crate) unsafe fn export($($arg: $ty),*) -> $ret {
                    if $check {
                        // SAFETY: forwards the caller's arguments under the same contract. A tail call.
                        return unsafe { gated($($arg),*) };
                    }
                    // SAFETY: as the export's.
                    unsafe { ungated($($arg),*) }
                }

                /// The gate is open: the shim's own answer first, else the usual path.
                #[inline(never)]
                #[allow(unreachable_code, unused_variables)] // a hook without a gate
                unsafe extern "C" fn gated($($arg: $ty),*) -> $ret {
                    if let Some(answer) = $gated {
                        return answer;
                    }
                    // SAFETY: as the export's.
                    unsafe { ungated($($arg),*) }
                }

                /// The disabled check proper.
                ///
                /// # Safety
                /// As the export's.
                #[inline(always)]
                unsafe fn ungated($($arg: $ty),*) -> $ret {
                    let real = REAL[Hook::$id as usize].cached();
                    if !real.is_null() && !RUNTIME.enabled() {
                        // SAFETY: `real` is the real function of this name (not null); the caller's arguments. A
                        // tail call: nothing runs after it.
                        return unsafe { forward(real, $($arg),*) };
                    }
                    // SAFETY: forwards the caller's arguments under the same contract.
                    unsafe { enabled($($arg),*) }
                }

                // Separate from the disabled check above so that no register is saved before it.
                #[inline(never)]
                unsafe extern "C" fn enabled($($arg: $ty),*) -> $ret {
                    let real = REAL[Hook::$id as usize].cached();
                    if !real.is_null() {
                        match RUNTIME.fast(Hook::$id as usize, $size as u64) {
                            // SAFETY: as in the export: the real function, the caller's arguments.
                            $crate::Fast::Forward => return unsafe { forward(real, $($arg),*) },
                            $crate::Fast::ForwardGuarded(guard) => {
                                // SAFETY: as above; the guard is dropped after the real call returns.
                                let status = unsafe { forward(real, $($arg),*) };
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
                unsafe extern "C" fn intercepted($($arg: $ty),*) -> $ret {
                    let real = REAL[Hook::$id as usize].get();
                    if !real.is_null() && !RUNTIME.enabled() {
                        // SAFETY: as in the export (reached here while the real function was still unresolved).
                        return unsafe { forward(real, $($arg),*) };
                    }
                    // SAFETY: `real` is the real function of this name or null; the caller's arguments.
                    unsafe { intercept(real, $($arg),*) }
                }
            }
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
