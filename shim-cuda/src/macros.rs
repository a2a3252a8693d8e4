//! The two macros the CUDA shim is written with: its hook table, and one thin exported function per hook.
//!
//! `cuda_hook!` is built on `shim_runtime::__hook_skeleton!`, as the UCX shim's `shim_runtime::hook!` is: the
//! export, the one real call and the slow path come from there; the CUDA shim adds its own entry (device filter,
//! dead GPU), error numbering and fast path. Unlike `shim_runtime::hook!`, every CUDA hook also gets
//! [`SLOTS`](crate::proc_address::SLOTS) unexported twins ("slot wrappers") that forward to a real function
//! handed out at run time rather than found by name: the pointer `cuGetProcAddress` returned, or what `dlsym`
//! found in a libcuda / libcudart handle. That is how calls the CUDA runtime makes through its own function
//! tables, and calls through `ctypes`, are intercepted.

/// Declares the hook table once: the `Hook` ids, the names published in the segment (`HOOKS`), the real
/// functions found by name (`REAL`), and each hook's slot wrappers (`WRAPPERS`). Each entry is
/// `Id => exported_function_name`; `crate::api` must define that function with [`cuda_hook!`].
macro_rules! hook_table {
    ($($id:ident => $name:ident),* $(,)?) => {
        /// Hook ids: indexes into [`HOOKS`], the segment's counters and arm mask.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Hook { $($id),* }
        /// Names of the intercepted functions, in [`Hook`] order.
        pub const HOOKS: &[&str] = &[$(stringify!($name)),*];
        /// The real functions, found by name in a loaded libcudart / libcuda.
        pub(crate) static REAL: [shim_runtime::RealFn; HOOKS.len()] = [$(
            shim_runtime::RealFn::new(shim_runtime::cstr(concat!(stringify!($name), "\0").as_bytes()), LIBRARIES)
        ),*];
        /// Each hook's slot wrappers (see [`crate::proc_address`]).
        pub(crate) static WRAPPERS: [&[crate::proc_address::Wrapper; crate::proc_address::SLOTS]; HOOKS.len()] =
            [$(&crate::api::$name::WRAPPERS),*];
    };
}

/// One exported hook and its slot wrappers, on `shim_runtime::__hook_skeleton!`. The exported body is a fast path
/// (faults off: one tail call to the real function) over [`crate::intercept::enter`], which applies the device
/// filter, the dead-GPU state and the decision engine. Options:
///
/// - `api`: [`Api::Runtime`](crate::xid::Api) or `Api::Driver` (numbering of XID preset codes, missing-function
///   code);
/// - `size`: the argument recorded as the call's size;
/// - `device`: the device the call acts on ([`Device`](crate::device::Device));
/// - `on_fault = |code| expr`: runs before an injected `code` is returned (e.g. a device count of 0);
/// - `after = |status| expr, needed = bool expr`: runs after every real call, even with faults off (device
///   tracking, handing out wrappers); while `needed` is true the hook does not take the tail-call fast path;
/// - `flow`: how the call takes part in asynchronous errors ([`Flow`](crate::asyncerr::Flow), default `Plain`):
///   `Async(stream)` defers its faults under `completion`; `Sync(scope)` reports pending errors (its gate, one
///   load, comes before the fast path: a pending error is reported even with faults off); `LastError` answers
///   from the shim's last-error state before asking the runtime.
macro_rules! cuda_hook {
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     api = $api:expr, size = $size:expr, device = $device:expr) => {
        cuda_hook!($id, fn $name($($arg: $ty),*) -> $ret, api = $api, size = $size, device = $device,
                   flow = crate::asyncerr::Flow::Plain);
    };
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     api = $api:expr, size = $size:expr, device = $device:expr, flow = $flow:expr) => {
        cuda_hook!(@full $id, fn $name($($arg: $ty),*) -> $ret, api = $api, size = $size, device = $device,
                   on_fault = |_code| (), after = |_status| (), needed = false, flow = $flow);
    };
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     api = $api:expr, size = $size:expr, device = $device:expr, on_fault = |$code:ident| $on_fault:expr) => {
        cuda_hook!($id, fn $name($($arg: $ty),*) -> $ret, api = $api, size = $size, device = $device,
                   on_fault = |$code| $on_fault, after = |_status| (), needed = false);
    };
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     api = $api:expr, size = $size:expr, device = $device:expr, after = |$status:ident| $after:expr,
     needed = $needed:expr) => {
        cuda_hook!($id, fn $name($($arg: $ty),*) -> $ret, api = $api, size = $size, device = $device,
                   on_fault = |_code| (), after = |$status| $after, needed = $needed);
    };
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     api = $api:expr, size = $size:expr, device = $device:expr,
     on_fault = |$code:ident| $on_fault:expr, after = |$status:ident| $after:expr, needed = $needed:expr) => {
        cuda_hook!(@full $id, fn $name($($arg: $ty),*) -> $ret, api = $api, size = $size, device = $device,
                   on_fault = |$code| $on_fault, after = |$status| $after, needed = $needed,
                   flow = crate::asyncerr::Flow::Plain);
    };
    (@full $id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
     api = $api:expr, size = $size:expr, device = $device:expr,
     on_fault = |$code:ident| $on_fault:expr, after = |$status:ident| $after:expr, needed = $needed:expr,
     flow = $flow:expr) => {
        shim_runtime::__hook_skeleton! {
            fn $name($($arg: $ty),*) -> $ret,
            enter = crate::intercept::enter(Hook::$id as usize, $size as u64, $device),
            fault = |injected, site| match crate::intercept::faulted($api, $flow, injected, site) {
                None => 0, // deferred: the launch "succeeded"; the next synchronisation reports it
                Some(injected) => {
                    let $code = crate::xid::code_for($api, injected);
                    $on_fault;
                    $code
                }
            },
            missing = $api.missing(),
            after = |$status| $after,
            layers = {
                /// The export: the real function found by name.
                ///
                /// # Safety
                /// As the export's.
                #[inline(always)]
                pub(crate) unsafe fn export($($arg: $ty),*) -> $ret {
                    // SAFETY: the real function of this name (or null); the caller's arguments, unchanged.
                    unsafe { call(REAL[Hook::$id as usize].get(), $($arg),*) }
                }

                /// The body shared by the export and its slot wrappers: runs the hook with `real` as the real
                /// function (null: not found).
                ///
                /// # Safety
                /// `real` is null or a function with this hook's C signature; the caller upholds its contract.
                #[inline(always)]
                unsafe fn call(real: *mut std::ffi::c_void, $($arg: $ty),*) -> $ret {
                    match $flow {
                        crate::asyncerr::Flow::Sync(scope) => {
                            if crate::asyncerr::pending() && !crate::RUNTIME.in_call() {
                                // SAFETY: forwards `real` and the caller's arguments under the same contract.
                                return unsafe { reported(scope, real, $($arg),*) };
                            }
                        }
                        crate::asyncerr::Flow::LastError { consume } => {
                            if crate::asyncerr::quiet() && !real.is_null() && crate::intercept::pass_untouched($needed) {
                                // SAFETY: `real` is not null, so it is the real function (this function's contract);
                                // the caller's arguments. A tail call.
                                return unsafe { forward(real, $($arg),*) };
                            }
                            // SAFETY: forwards `real` and the caller's arguments under the same contract.
                            return unsafe { last_error(consume, real, $($arg),*) };
                        }
                        crate::asyncerr::Flow::Plain | crate::asyncerr::Flow::Async(_) => {}
                    }
                    if !real.is_null() && crate::intercept::pass_untouched($needed) {
                        // SAFETY: `real` is not null, so it is the real function (this function's contract); the
                        // caller's arguments. A tail call.
                        return unsafe { forward(real, $($arg),*) };
                    }
                    // SAFETY: forwards `real` and the caller's arguments under the same contract.
                    unsafe { intercepted(real, $($arg),*) }
                }

                /// # Safety
                /// As `call`'s.
                #[inline(never)]
                unsafe fn intercepted(real: *mut std::ffi::c_void, $($arg: $ty),*) -> $ret {
                    // SAFETY: as `call`'s contract.
                    unsafe { intercept(real, $($arg),*) }
                }

                /// A synchronising call while errors are pending (outermost only: the runtime's own driver calls
                /// inside it pass): the call as usual, then a pending error its `scope` covers wins.
                ///
                /// # Safety
                /// As `call`'s.
                #[cold]
                #[inline(never)]
                unsafe fn reported(scope: crate::asyncerr::Scope, real: *mut std::ffi::c_void, $($arg: $ty),*)
                    -> $ret {
                    let status = if !real.is_null() && crate::intercept::pass_untouched($needed) {
                        // SAFETY: `real` is not null, so it is the real function (`call`'s contract).
                        unsafe { forward(real, $($arg),*) }
                    } else {
                        // SAFETY: as `call`'s contract.
                        unsafe { intercept(real, $($arg),*) }
                    };
                    crate::asyncerr::report($api, scope, status)
                }

                /// `cudaGetLastError` / `cudaPeekAtLastError` while the shim has something to say: entered as usual
                /// (counted, may be faulted itself), then the shim's answer if any, else the runtime's.
                ///
                /// # Safety
                /// As `call`'s.
                #[cold]
                #[inline(never)]
                unsafe fn last_error(consume: bool, real: *mut std::ffi::c_void, $($arg: $ty),*) -> $ret {
                    if crate::RUNTIME.in_call() {
                        // SAFETY: as `call`'s contract (a nested call passes straight through).
                        return unsafe { intercept(real, $($arg),*) };
                    }
                    let call = crate::intercept::enter(Hook::$id as usize, $size as u64, $device);
                    if let Some(injected) = call.fault() {
                        return match crate::intercept::faulted($api, $flow, injected, call.site()) {
                            None => 0,
                            Some(injected) => crate::xid::code_for($api, injected),
                        };
                    }
                    if let Some(code) = crate::asyncerr::last_error_answer(consume) {
                        return code;
                    }
                    if real.is_null() {
                        return $api.missing();
                    }
                    // SAFETY: `real` is not null, so it is the real function (`call`'s contract); `call` keeps the
                    // reentrancy guard alive across the real call.
                    let status = unsafe { forward(real, $($arg),*) };
                    drop(call);
                    status
                }

                unsafe extern "C" fn slot<const S: usize>($($arg: $ty),*) -> $ret {
                    // SAFETY: the slot holds the real function this wrapper was handed out for (same signature);
                    // the arguments are the caller's.
                    unsafe { call(crate::proc_address::slot_real(Hook::$id as usize, S), $($arg),*) }
                }

                /// This hook's slot wrappers, one per slot.
                pub(crate) static WRAPPERS: [crate::proc_address::Wrapper; crate::proc_address::SLOTS] = [
                    crate::proc_address::Wrapper(slot::<0> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<1> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<2> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<3> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<4> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<5> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<6> as Real as *const ()),
                    crate::proc_address::Wrapper(slot::<7> as Real as *const ()),
                ];
            }
        }
    };
}
