//! A fixed-size, lock-free map from a pointer (a request, an endpoint) to a small slot number, for the shim's
//! fault paths: no allocation, no lock.
//!
//! An entry is one word, `pointer << 16 | slot`, in a window of [`WINDOW`] words starting at the pointer's hash.
//! Insertion claims an empty word of the window with a CAS; removal clears the word back to empty (no tombstones:
//! lookups read the whole window, which is two cache lines). A key whose window is full is not inserted; the
//! caller falls back to something simpler. User-space pointers on the supported platforms fit in 48 bits.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

/// Words a key may occupy.
pub(crate) const WINDOW: usize = 16;

/// `N` words (a power of two).
pub(crate) struct PtrIndex<const N: usize> {
    words: [AtomicU64; N],
}

impl<const N: usize> PtrIndex<N> {
    /// An empty index.
    pub(crate) const fn new() -> Self {
        const { assert!(N.is_power_of_two() && N >= WINDOW) };
        PtrIndex { words: [const { AtomicU64::new(0) }; N] }
    }

    fn window(key: *mut c_void) -> impl Iterator<Item = usize> {
        // Fibonacci hashing of the address without its alignment bits.
        let hash = ((key as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize;
        (0..WINDOW).map(move |i| (hash + i) & (N - 1))
    }

    fn entry(key: *mut c_void, slot: u16) -> Option<u64> {
        let address = key as u64;
        (address != 0 && address >> 48 == 0).then_some(address << 16 | u64::from(slot))
    }

    /// Maps `key` to `slot`, replacing an entry `key` already had; false if its window is full (or the pointer
    /// does not fit).
    pub(crate) fn insert(&self, key: *mut c_void, slot: u16) -> bool {
        let Some(entry) = Self::entry(key, slot) else { return false };
        self.remove(key);
        Self::window(key).any(|i| self.words[i].compare_exchange(0, entry, AcqRel, Acquire).is_ok())
    }

    /// The slot `key` maps to.
    pub(crate) fn get(&self, key: *mut c_void) -> Option<u16> {
        let address = key as u64;
        if address == 0 {
            return None;
        }
        Self::window(key).map(|i| self.words[i].load(Acquire)).find(|w| w >> 16 == address).map(|w| w as u16)
    }

    /// Forgets `key`; the slot it mapped to, if any.
    pub(crate) fn remove(&self, key: *mut c_void) -> Option<u16> {
        let address = key as u64;
        if address == 0 {
            return None;
        }
        for i in Self::window(key) {
            let word = self.words[i].load(Acquire);
            if word >> 16 == address && self.words[i].compare_exchange(word, 0, AcqRel, Acquire).is_ok() {
                return Some(word as u16);
            }
        }
        None
    }

    /// Forgets everything (a forked child: its parent's requests and endpoints are not its own).
    pub(crate) fn clear(&self) {
        for word in &self.words {
            word.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Which of `WORDS * 64` slots are taken: a slot is taken with one CAS, given back with one atomic AND.
pub(crate) struct Bitmap<const WORDS: usize> {
    words: [AtomicU64; WORDS],
}

impl<const WORDS: usize> Bitmap<WORDS> {
    /// All free.
    pub(crate) const fn new() -> Self {
        Bitmap { words: [const { AtomicU64::new(0) }; WORDS] }
    }

    /// Takes a free slot (the lowest found); `None` when all are taken.
    pub(crate) fn take(&self) -> Option<usize> {
        for (word_index, word) in self.words.iter().enumerate() {
            let mut bits = word.load(Relaxed);
            while bits != u64::MAX {
                let bit = (!bits).trailing_zeros() as usize;
                match word.compare_exchange_weak(bits, bits | 1 << bit, AcqRel, Relaxed) {
                    Ok(_) => return Some(word_index * 64 + bit),
                    Err(now) => bits = now,
                }
            }
        }
        None
    }

    /// Gives slot `index` back.
    pub(crate) fn give(&self, index: usize) {
        if let Some(word) = self.words.get(index / 64) {
            word.fetch_and(!(1 << (index % 64)), Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptr(address: usize) -> *mut c_void {
        address as *mut c_void
    }

    #[test]
    fn keys_map_to_slots_until_removed() {
        let index = PtrIndex::<64>::new();
        assert!(index.insert(ptr(0x7f00_1000), 3));
        assert!(index.insert(ptr(0x7f00_2000), 4));
        assert_eq!((index.get(ptr(0x7f00_1000)), index.get(ptr(0x7f00_2000))), (Some(3), Some(4)));
        assert!(index.insert(ptr(0x7f00_1000), 9), "a key mapped again replaces its entry");
        assert_eq!(index.get(ptr(0x7f00_1000)), Some(9));
        assert_eq!(index.remove(ptr(0x7f00_1000)), Some(9));
        assert_eq!((index.get(ptr(0x7f00_1000)), index.remove(ptr(0x7f00_1000))), (None, None));
        assert_eq!(index.get(ptr(0)), None);
        assert!(!index.insert(ptr(0), 1) && !index.insert(ptr(1 << 50), 1), "null and non-canonical keys");
    }

    #[test]
    fn a_bitmap_hands_out_each_slot_once_until_given_back() {
        let bitmap = Bitmap::<2>::new();
        let taken: Vec<usize> = (0..128).map(|_| bitmap.take().unwrap()).collect();
        assert_eq!(taken, (0..128).collect::<Vec<_>>());
        assert_eq!(bitmap.take(), None);
        bitmap.give(70);
        bitmap.give(500); // out of range: nothing
        assert_eq!((bitmap.take(), bitmap.take()), (Some(70), None));
    }

    #[test]
    fn a_full_window_refuses_and_removal_makes_room() {
        let index = PtrIndex::<16>::new();
        for k in 1..=16usize {
            assert!(index.insert(ptr(k << 12), k as u16), "{k}");
        }
        assert!(!index.insert(ptr(17 << 12), 17), "every word of the window is taken");
        assert_eq!(index.remove(ptr(5 << 12)), Some(5));
        assert!(index.insert(ptr(17 << 12), 17));
        assert!((1..=17usize).filter(|k| *k != 5).all(|k| index.get(ptr(k << 12)) == Some(k as u16)));
    }
}
