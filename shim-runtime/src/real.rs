//! Finding the real function behind a hook, without ever linking the intercepted library.

use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering::Relaxed};

/// The function at `address` as the function pointer type `F`: the one conversion, in the whole workspace, from
/// a resolved symbol address (what `dlsym`, `dlvsym` or `cuGetProcAddress` returned, or a [`RealFn`]) to
/// something callable.
///
/// # Safety
/// `F` is an `unsafe extern "C" fn(…) -> …` pointer type that mirrors the C signature and ABI of the function
/// at `address`, and `address` is not null.
#[inline(always)]
pub unsafe fn fn_at<F: Copy>(address: *mut c_void) -> F {
    const { assert!(size_of::<F>() == size_of::<*mut c_void>(), "F is a function pointer type") };
    // SAFETY: by this function's contract `F` is a function pointer type (pointer-sized, as asserted above) whose
    // signature and ABI are those of the function at `address`. The dynamic linker hands out a function's entry
    // point as a data pointer, and on the POSIX platforms where `dlsym` works at all, code and data addresses
    // share one representation, so reading the address as `F` gives a pointer to that very function; being
    // non-null, it meets a function pointer's validity invariant. Calling it is sound whenever the caller
    // upholds that function's own contract.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) }
}

/// A lazily resolved, cached pointer to the real implementation of one intercepted function.
pub struct RealFn {
    name: &'static CStr,
    /// File-name prefixes of the libraries that may define it (`libucp`): a loaded object matches if its file name
    /// is the prefix followed by `.` or `-` (so `libcuda` does not match `libcudart`).
    libraries: &'static [&'static str],
    cached: AtomicPtr<c_void>,
    reported_missing: AtomicBool,
}

impl RealFn {
    /// Declares the real function `name` found in one of `libraries`.
    pub const fn new(name: &'static CStr, libraries: &'static [&'static str]) -> Self {
        RealFn {
            name,
            libraries,
            cached: AtomicPtr::new(std::ptr::null_mut()),
            reported_missing: AtomicBool::new(false),
        }
    }

    /// The function's name.
    pub fn name(&self) -> &'static str {
        self.name.to_str().unwrap_or("?")
    }

    /// The real function's address if it was already found (null otherwise): one relaxed load.
    #[inline(always)]
    pub fn cached(&self) -> *mut c_void {
        self.cached.load(Relaxed)
    }

    /// The real function's address, or null if no loaded library defines it (reported once on stderr).
    #[inline]
    pub fn get(&self) -> *mut c_void {
        let cached = self.cached.load(Relaxed);
        if !cached.is_null() {
            return cached;
        }
        self.resolve()
    }

    #[cold]
    fn resolve(&self) -> *mut c_void {
        // SAFETY: RTLD_NEXT with a NUL-terminated name is always valid to ask; dlsym returns null when not found.
        let mut found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
        if found.is_null() {
            found = self.search_loaded_objects();
        }
        if found.is_null() {
            if !self.reported_missing.swap(true, Relaxed) {
                crate::log!(
                    "{}: real function not found in any loaded {:?}; calls to it fail",
                    self.name(),
                    self.libraries
                );
            }
        } else {
            self.cached.store(found, Relaxed);
        }
        found
    }

    /// Walks the loaded objects for a matching library (e.g. a wheel's `libucp-<hash>.so.0` opened `RTLD_LOCAL`,
    /// invisible to `RTLD_NEXT`) and looks the symbol up in it. Cold: runs until the function is found.
    fn search_loaded_objects(&self) -> *mut c_void {
        struct Search<'a> {
            libraries: &'a [&'a str],
            paths: Vec<CString>,
        }
        unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
            // SAFETY: dl_iterate_phdr passes the `data` we gave it (a live &mut Search) and a valid info pointer.
            let (search, info) = unsafe { (&mut *data.cast::<Search<'_>>(), &*info) };
            if info.dlpi_name.is_null() {
                return 0;
            }
            // SAFETY: dlpi_name is a NUL-terminated path owned by the dynamic linker for the duration of the call.
            let path = unsafe { CStr::from_ptr(info.dlpi_name) };
            let file = path.to_bytes().rsplit(|&b| b == b'/').next().unwrap_or_default();
            let matches = search.libraries.iter().any(|prefix| {
                file.strip_prefix(prefix.as_bytes())
                    .is_some_and(|rest| rest.first().is_some_and(|&c| c == b'.' || c == b'-'))
            });
            if matches {
                search.paths.push(path.to_owned());
            }
            0
        }
        let mut search = Search { libraries: self.libraries, paths: Vec::new() };
        // SAFETY: `visit` matches the callback signature and only uses `data` as the &mut Search passed here.
        unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search<'_>).cast()) };
        // dlopen outside the iteration: the loader's lock is not held any more.
        for path in &search.paths {
            // SAFETY: the object is loaded, so RTLD_NOLOAD only returns a new reference to it (or null).
            let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
            if handle.is_null() {
                continue;
            }
            // SAFETY: `handle` is a valid handle from dlopen; the name is NUL-terminated.
            let symbol = unsafe { libc::dlsym(handle, self.name.as_ptr()) };
            // SAFETY: balances the dlopen above; the object stays loaded (its loader holds its own reference).
            unsafe { libc::dlclose(handle) };
            if !symbol.is_null() {
                return symbol;
            }
        }
        std::ptr::null_mut()
    }
}
