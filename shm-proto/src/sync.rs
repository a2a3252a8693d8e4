//! The one place atomics come from, so the lock-free protocols (seqlock, ring) can be model-checked with loom
//! (`RUSTFLAGS="--cfg loom"`). Everything that lives in shared memory uses these types.
//!
//! Each type is a `#[repr(transparent)]` wrapper of the standard atomic (loom's under `cfg(loom)`) with the
//! operations the crate and its users need, so the segment's pinned layout is the standard atomics' layout. The
//! crate's `clippy.toml` forbids the standard atomic types (`disallowed-types`) everywhere else in the crate: a
//! type declared here is the only way in, and this module is the only place allowed to name the originals.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, Ordering};
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, Ordering};

pub use atomics::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize};

/// A hint inside bounded retry loops; loom needs to be told to schedule another thread.
#[inline]
pub fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

#[allow(clippy::disallowed_types)] // the wrappers: the one place the underlying atomics are named
mod atomics {
    use std::fmt;

    use super::Ordering;

    #[cfg(loom)]
    use loom::sync::atomic as imp;
    #[cfg(not(loom))]
    use std::sync::atomic as imp;

    /// `new`: `const` with the standard atomics, a plain function with loom's (which are not `const`).
    macro_rules! constructor {
        ($value:ty, $inner:ident) => {
            #[doc = concat!("A new `", stringify!($inner), "` holding `value`.")]
            #[cfg(not(loom))]
            #[inline]
            pub const fn new(value: $value) -> Self {
                Self(imp::$inner::new(value))
            }

            #[doc = concat!("A new `", stringify!($inner), "` holding `value` (loom's atomics are not `const`).")]
            #[cfg(loom)]
            #[inline]
            pub fn new(value: $value) -> Self {
                Self(imp::$inner::new(value))
            }
        };
    }

    /// The operations every wrapper has (integers and `bool`), forwarded unchanged.
    macro_rules! common {
        ($value:ty) => {
            /// Loads the value.
            #[inline(always)]
            pub fn load(&self, order: Ordering) -> $value {
                self.0.load(order)
            }

            /// Stores `value`.
            #[inline(always)]
            pub fn store(&self, value: $value, order: Ordering) {
                self.0.store(value, order)
            }

            /// Stores `value`, returning the previous value.
            #[inline]
            pub fn swap(&self, value: $value, order: Ordering) -> $value {
                self.0.swap(value, order)
            }

            /// Stores `new` if the value is `current`; returns the previous value, `Ok` when it was `current`.
            #[inline]
            pub fn compare_exchange(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                self.0.compare_exchange(current, new, success, failure)
            }

            /// As [`Self::compare_exchange`], but may fail spuriously (for retry loops).
            #[inline]
            pub fn compare_exchange_weak(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                self.0.compare_exchange_weak(current, new, success, failure)
            }

            /// Bitwise "and" with `value`, returning the previous value.
            #[inline]
            pub fn fetch_and(&self, value: $value, order: Ordering) -> $value {
                self.0.fetch_and(value, order)
            }

            /// Bitwise "or" with `value`, returning the previous value.
            #[inline]
            pub fn fetch_or(&self, value: $value, order: Ordering) -> $value {
                self.0.fetch_or(value, order)
            }
        };
    }

    macro_rules! atomic_int {
        ($name:ident, $int:ty) => {
            #[doc = concat!("A `", stringify!($int), "` shared between threads or processes: the standard (or, under ")]
            #[doc = concat!("loom, loom's) `", stringify!($name), "`, same layout.")]
            #[repr(transparent)]
            pub struct $name(imp::$name);

            impl $name {
                constructor!($int, $name);
                common!($int);

                /// Adds `value` (wrapping), returning the previous value.
                #[inline(always)]
                pub fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                    self.0.fetch_add(value, order)
                }

                /// Subtracts `value` (wrapping), returning the previous value.
                #[inline]
                pub fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                    self.0.fetch_sub(value, order)
                }

                /// Stores the maximum of the value and `value`, returning the previous value.
                #[inline]
                pub fn fetch_max(&self, value: $int, order: Ordering) -> $int {
                    self.0.fetch_max(value, order)
                }

                /// Stores the minimum of the value and `value`, returning the previous value.
                #[inline]
                pub fn fetch_min(&self, value: $int, order: Ordering) -> $int {
                    self.0.fetch_min(value, order)
                }
            }

            impl Default for $name {
                fn default() -> Self {
                    Self::new(0)
                }
            }

            impl fmt::Debug for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Debug::fmt(&self.0, f)
                }
            }
        };
    }

    atomic_int!(AtomicU8, u8);
    atomic_int!(AtomicI32, i32);
    atomic_int!(AtomicU32, u32);
    atomic_int!(AtomicU64, u64);
    atomic_int!(AtomicUsize, usize);

    /// A `bool` shared between threads: the standard (or, under loom, loom's) `AtomicBool`, same layout.
    #[repr(transparent)]
    pub struct AtomicBool(imp::AtomicBool);

    impl AtomicBool {
        constructor!(bool, AtomicBool);
        common!(bool);
    }

    impl Default for AtomicBool {
        fn default() -> Self {
            Self::new(false)
        }
    }

    impl fmt::Debug for AtomicBool {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(&self.0, f)
        }
    }

    #[cfg(all(test, not(loom)))]
    mod tests {
        use super::*;
        use std::mem::{align_of, size_of};

        #[test]
        fn the_wrappers_have_the_layout_of_the_standard_atomics() {
            assert_eq!((size_of::<AtomicU8>(), align_of::<AtomicU8>()), (1, 1));
            assert_eq!((size_of::<AtomicI32>(), align_of::<AtomicI32>()), (4, 4));
            assert_eq!((size_of::<AtomicU32>(), align_of::<AtomicU32>()), (4, 4));
            assert_eq!((size_of::<AtomicU64>(), align_of::<AtomicU64>()), (8, 8));
            assert_eq!(size_of::<AtomicUsize>(), size_of::<imp::AtomicUsize>());
            assert_eq!(align_of::<AtomicUsize>(), align_of::<imp::AtomicUsize>());
            assert_eq!((size_of::<AtomicBool>(), align_of::<AtomicBool>()), (1, 1));
        }

        #[test]
        fn the_operations_forward() {
            use Ordering::Relaxed;
            let a = AtomicU64::new(5);
            assert_eq!(a.fetch_add(2, Relaxed), 5);
            assert_eq!(a.fetch_sub(1, Relaxed), 7);
            assert_eq!(a.fetch_max(9, Relaxed), 6);
            assert_eq!(a.fetch_min(3, Relaxed), 9);
            assert_eq!(a.fetch_or(0b100, Relaxed), 3);
            assert_eq!(a.fetch_and(0b110, Relaxed), 7);
            assert_eq!(a.swap(1, Relaxed), 6);
            assert_eq!(a.compare_exchange(2, 3, Relaxed, Relaxed), Err(1));
            assert_eq!(a.compare_exchange(1, 3, Relaxed, Relaxed), Ok(1));
            assert_eq!(a.load(Relaxed), 3);
            a.store(0, Relaxed);
            assert_eq!(format!("{a:?}"), "0");
            assert_eq!(AtomicI32::default().load(Relaxed), 0);
            let flag = AtomicBool::default();
            assert!(!flag.swap(true, Relaxed));
            assert!(flag.load(Relaxed));
        }
    }
}
