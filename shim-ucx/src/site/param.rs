//! `ucp_request_param_t`, read by its field mask, and the copy a faulted call posts with.
//!
//! The struct grew between UCX releases (72 bytes in 1.13; 96 from 1.22, which added the remote datatype fields),
//! and a caller only promises the fields its `op_attr_mask` names. So the shim never reads or copies a fixed
//! `sizeof`: it copies up to the end of the highest field the mask sets, and refuses a mask with a field bit it
//! does not know (that call then fails at the call, as in the `post` site).

use std::ffi::c_void;

/// `UCP_OP_ATTR_FIELD_REQUEST`: `request` is the caller's memory for the request.
pub(crate) const FIELD_REQUEST: u32 = 1 << 0;
/// `UCP_OP_ATTR_FIELD_CALLBACK`.
pub(crate) const FIELD_CALLBACK: u32 = 1 << 1;
/// `UCP_OP_ATTR_FIELD_USER_DATA`.
pub(crate) const FIELD_USER_DATA: u32 = 1 << 2;
/// `UCP_OP_ATTR_FLAG_NO_IMM_CMPL`: the call must not complete inline.
pub(crate) const FLAG_NO_IMM_CMPL: u32 = 1 << 16;
/// `UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL`: the call must complete inline or fail.
pub(crate) const FLAG_FORCE_IMM_CMPL: u32 = 1 << 18;

/// Field bits 0–11 and flag bits 16–19: everything UCX 1.13–1.23 defines.
const KNOWN_BITS: u32 = 0x0000_0fff | 0x000f_0000;

/// The byte just past each field, by field bit (LP64): request, cb, user_data, datatype, flags, reply_buffer,
/// memory_type (+4 padding), recv_info, memh, then 1.22's remote_datatype, remote, remote_count.
const FIELD_END: [usize; 12] = [16, 24, 40, 32, 8, 48, 56, 64, 72, 80, 88, 96];

/// Bytes of the largest `ucp_request_param_t` the shim knows.
pub(crate) const PARAM_MAX: usize = 96;

/// Offsets the shim reads and writes.
const OFFSET_REQUEST: usize = 8;
const OFFSET_CB: usize = 16;
const OFFSET_USER_DATA: usize = 32;

/// How many bytes of a param with `mask` the caller promised (at least up to `user_data`, which the copy writes),
/// or `None` for a mask with a bit this shim does not know.
pub(crate) fn param_len(mask: u32) -> Option<usize> {
    if mask & !KNOWN_BITS != 0 {
        return None;
    }
    let fields = FIELD_END.iter().enumerate().filter(|(bit, _)| mask & (1 << bit) != 0).map(|(_, end)| *end);
    Some(fields.fold(OFFSET_USER_DATA + 8, usize::max))
}

/// What the shim needs from the caller's param.
#[derive(Clone, Copy)]
pub(crate) struct View {
    /// `op_attr_mask` (0 for a null param).
    pub mask: u32,
    /// The caller's callback, if `FIELD_CALLBACK`.
    pub callback: usize,
    /// The caller's `user_data` if `FIELD_USER_DATA`, else null (what UCX passes to a deferred callback).
    pub user_data: *mut c_void,
    /// The caller's request memory, if `FIELD_REQUEST`.
    pub request: *mut c_void,
}

impl View {
    /// Reads `param` (null reads as all-zero).
    ///
    /// # Safety
    /// `param` is null or points to a `ucp_request_param_t` whose fields named by its mask are readable.
    pub(crate) unsafe fn read(param: *const c_void) -> View {
        if param.is_null() {
            return View { mask: 0, callback: 0, user_data: std::ptr::null_mut(), request: std::ptr::null_mut() };
        }
        let base = param.cast::<u8>();
        // SAFETY: the mask is the first word of every param (this function's contract).
        let mask = unsafe { base.cast::<u32>().read_unaligned() };
        // SAFETY: each field is read only when the mask names it, so the caller promised it is there.
        let word = |offset: usize| unsafe { base.add(offset).cast::<usize>().read_unaligned() };
        View {
            mask,
            callback: if mask & FIELD_CALLBACK != 0 { word(OFFSET_CB) } else { 0 },
            user_data: if mask & FIELD_USER_DATA != 0 {
                word(OFFSET_USER_DATA) as *mut c_void
            } else {
                std::ptr::null_mut()
            },
            request: if mask & FIELD_REQUEST != 0 { word(OFFSET_REQUEST) as *mut c_void } else { std::ptr::null_mut() },
        }
    }
}

/// A copy of the caller's param that asks for a request and routes its completion to the shim: the caller's
/// struct is never written.
#[repr(C, align(8))]
pub(crate) struct Substitute([u8; PARAM_MAX]);

impl Substitute {
    /// A copy of `param` (`len` bytes, from [`param_len`]) whose callback is `callback` with `user_data`, and which
    /// may not complete inline. A null `param` gives a param with only those.
    ///
    /// # Safety
    /// As [`View::read`], and `len` is `param_len` of its mask.
    pub(crate) unsafe fn new(param: *const c_void, len: usize, callback: usize, user_data: usize) -> Substitute {
        let mut copy = Substitute([0; PARAM_MAX]);
        let len = len.min(PARAM_MAX);
        if !param.is_null() {
            // SAFETY: the caller promised `len` readable bytes (`param_len` of its own mask); `copy` holds 96.
            unsafe { std::ptr::copy_nonoverlapping(param.cast::<u8>(), copy.0.as_mut_ptr(), len) };
        }
        let mask = u32::from_ne_bytes(copy.0[..4].try_into().unwrap_or_default());
        let mask = mask | FIELD_CALLBACK | FIELD_USER_DATA | FLAG_NO_IMM_CMPL;
        copy.0[..4].copy_from_slice(&mask.to_ne_bytes());
        copy.0[OFFSET_CB..OFFSET_CB + 8].copy_from_slice(&callback.to_ne_bytes());
        copy.0[OFFSET_USER_DATA..OFFSET_USER_DATA + 8].copy_from_slice(&user_data.to_ne_bytes());
        copy
    }

    /// The copy, as the param argument.
    pub(crate) fn as_ptr(&self) -> *const c_void {
        self.0.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_param_is_as_long_as_its_highest_field() {
        assert_eq!(param_len(0), Some(40), "the copy always reaches user_data");
        assert_eq!(param_len(FIELD_CALLBACK | FIELD_USER_DATA), Some(40));
        assert_eq!(param_len(1 << 8), Some(72), "memh: the end of UCX 1.13's struct");
        assert_eq!(param_len(1 << 8 | 1 << 11), Some(96), "remote_count: the end of 1.22's");
        assert_eq!(param_len(1 << 7 | FLAG_NO_IMM_CMPL | 1 << 19), Some(64), "flags add no length");
        assert_eq!(param_len(1 << 12), None, "a field this shim does not know");
        assert_eq!(param_len(1 << 20), None, "a flag this shim does not know");
    }

    #[test]
    fn the_substitute_keeps_every_field_and_takes_over_the_completion() {
        let mut param = [0u64; 12];
        param[0] = u64::from(FIELD_CALLBACK | FIELD_USER_DATA | FIELD_REQUEST | 1 << 8 | 1 << 11);
        param[1] = 0x1000; // request
        param[2] = 0x2000; // cb
        param[4] = 0x4000; // user_data
        param[8] = 0x8000; // memh
        param[11] = 7; // remote_count
        let ptr = param.as_ptr().cast();
        // SAFETY: a 96-byte param with those fields.
        let view = unsafe { View::read(ptr) };
        assert_eq!((view.callback, view.user_data as usize, view.request as usize), (0x2000, 0x4000, 0x1000));
        let len = param_len(view.mask).unwrap();
        // SAFETY: as above.
        let copy = unsafe { Substitute::new(ptr, len, 0xC0DE, 42) };
        // SAFETY: a 96-byte param.
        let seen = unsafe { View::read(copy.as_ptr()) };
        assert_eq!((seen.callback, seen.user_data as usize, seen.request as usize), (0xC0DE, 42, 0x1000));
        assert_ne!(seen.mask & FLAG_NO_IMM_CMPL, 0);
        let words: Vec<u64> = copy.0.chunks(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
        assert_eq!((words[8], words[11]), (0x8000, 7), "memh and 1.22's remote_count are kept");
        // SAFETY: null reads as all-zero.
        let none = unsafe { View::read(std::ptr::null()) };
        assert_eq!((none.mask, none.callback), (0, 0));
    }
}
