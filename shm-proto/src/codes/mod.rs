//! Status/error code tables for the injected APIs, and the parsing of user-given codes.
//!
//! This module owns the numeric ABI facts faultline relies on when it makes an intercepted call fail:
//! every `ucs_status_t` of UCX ([`UCX_STATUS`]), every `cudaError_t` of the CUDA runtime ([`CUDA_RUNTIME`])
//! and every `CUresult` of the CUDA driver API ([`CUDA_DRIVER`]), with their names and short descriptions.
//! It also owns each kind's default error pool ([`default_pool`]) and the rules for turning what a user
//! typed (a number or a name, alone or as a comma-separated list) into codes ([`parse_code`],
//! [`parse_code_list`]).
//!
//! Sources: UCX 1.13 `src/ucs/type/status.h` (values; no later code up to 1.18 could be confirmed) and
//! `src/ucs/type/status.c` (the `ucs_status_string` descriptions); CUDA 12.9 `driver_types.h`
//! (`cudaError_t`, descriptions are what `cudaGetErrorString` returns) and `cuda.h` (`CUresult`,
//! descriptions condensed from the header's documentation of each value).

use crate::layout::{Kind, POOL_CAP};

/// One named status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The numeric value, as the C API returns it.
    pub code: i32,
    /// The C enumerator name, e.g. `UCS_ERR_IO_ERROR`, `cudaErrorNoDevice`, `CUDA_ERROR_NO_DEVICE`.
    pub name: &'static str,
    /// A short human-readable description of the code.
    pub description: &'static str,
}

mod tables;

pub use tables::{CUDA_DRIVER, CUDA_RUNTIME, UCX_STATUS};

/// The lowest value of UCX's reserved error range (`UCS_ERR_LAST`); errors run from -1 down to it.
const UCX_ERR_LAST: i32 = -100;

/// Name prefixes a user may leave out, per table (tried after the full name).
const UCX_PREFIXES: &[&str] = &["UCS_ERR_", "UCS_"];
/// Prefixes of runtime names (`cudaErrorNoDevice` → `NoDevice`, `cudaSuccess` → `Success`).
const RUNTIME_PREFIXES: &[&str] = &["cudaError", "cuda"];
/// Prefixes of driver names (`CUDA_ERROR_NO_DEVICE` → `NO_DEVICE`, `CUDA_SUCCESS` → `SUCCESS`).
const DRIVER_PREFIXES: &[&str] = &["CUDA_ERROR_", "CUDA_"];

/// The kind as users and messages spell it.
fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Ucx => "ucx",
        Kind::Cuda => "cuda",
    }
}

/// The tables of a kind, in lookup order, each with the prefixes its names may be given without.
fn tables(kind: Kind) -> [(&'static [CodeInfo], &'static [&'static str]); 2] {
    match kind {
        Kind::Ucx => [(UCX_STATUS, UCX_PREFIXES), (&[], &[])],
        Kind::Cuda => [(CUDA_RUNTIME, RUNTIME_PREFIXES), (CUDA_DRIVER, DRIVER_PREFIXES)],
    }
}

/// The entry of `table` with this code.
fn find_code(table: &'static [CodeInfo], code: i32) -> Option<&'static CodeInfo> {
    table.iter().find(|info| info.code == code)
}

/// The spellings a name may be given in: the full name, then the name without each prefix it has.
fn name_forms<'a>(name: &'a str, prefixes: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
    std::iter::once(name).chain(prefixes.iter().filter_map(move |p| name.strip_prefix(p)).filter(|s| !s.is_empty()))
}

/// The entry named `text` (full or short form): an exact match anywhere wins over a case-insensitive one.
fn find_name(kind: Kind, text: &str) -> Option<&'static CodeInfo> {
    let tabs = tables(kind);
    for exact in [true, false] {
        for (table, prefixes) in tabs {
            let hit = table.iter().find(|info| {
                name_forms(info.name, prefixes).any(|f| if exact { f == text } else { f.eq_ignore_ascii_case(text) })
            });
            if hit.is_some() {
                return hit;
            }
        }
    }
    None
}

/// The kind's default error pool: UCX `[-3, -6, -20]` (`UCS_ERR_IO_ERROR`, `UCS_ERR_UNREACHABLE`,
/// `UCS_ERR_TIMED_OUT`); CUDA `[100]` (`cudaErrorNoDevice` / `CUDA_ERROR_NO_DEVICE`).
pub fn default_pool(kind: Kind) -> &'static [i32] {
    match kind {
        Kind::Ucx => &[-3, -6, -20],
        Kind::Cuda => &[100],
    }
}

/// Whether `code` is an error for that kind.
///
/// UCX: any value in UCX's reserved error range -100..=-1 (which holds every negative [`UCX_STATUS`] entry,
/// and also the unnamed codes of the link and endpoint failure ranges). CUDA: nonzero and listed in
/// [`CUDA_RUNTIME`] or [`CUDA_DRIVER`]. `UCS_OK`, `UCS_INPROGRESS`, `cudaSuccess` and `CUDA_SUCCESS` are not errors.
pub fn is_error(kind: Kind, code: i32) -> bool {
    match kind {
        Kind::Ucx => (UCX_ERR_LAST..=-1).contains(&code),
        Kind::Cuda => code != 0 && (find_code(CUDA_RUNTIME, code).is_some() || find_code(CUDA_DRIVER, code).is_some()),
    }
}

/// The best name for a code: UCX from [`UCX_STATUS`]; CUDA: the runtime name if [`CUDA_RUNTIME`] has the code,
/// else the driver name. `None` if the code is not in the kind's tables.
pub fn name_of(kind: Kind, code: i32) -> Option<&'static str> {
    tables(kind).into_iter().find_map(|(table, _)| find_code(table, code)).map(|info| info.name)
}

/// Every code that may be given for this kind, for pickers in a UI: UCX: the errors of [`UCX_STATUS`];
/// CUDA: the errors of [`CUDA_RUNTIME`], then those of [`CUDA_DRIVER`]. Success codes are left out.
pub fn error_codes(kind: Kind) -> impl Iterator<Item = &'static CodeInfo> {
    let [(first, _), (second, _)] = tables(kind);
    first.iter().chain(second).filter(move |info| is_error(kind, info.code))
}

/// Parses one code: a decimal integer (optionally negative; surrounding whitespace is ignored) or a name.
///
/// Names match exactly or case-insensitively, in full or without their prefix: for UCX `UCS_ERR_IO_ERROR`,
/// `io_error` or `IO_ERROR`; for CUDA `cudaErrorNoDevice` or `NoDevice` (runtime) and `CUDA_ERROR_NO_DEVICE` or
/// `NO_DEVICE` (driver). UCX accepts any number in its reserved error range -100..=-1, named or not; CUDA accepts
/// only numbers one of its tables lists. Non-errors give [`CodeError::NotAnError`], anything else that does not
/// match gives [`CodeError::Unknown`].
pub fn parse_code(kind: Kind, text: &str) -> Result<i32, CodeError> {
    let text = text.trim();
    let unknown = || CodeError::Unknown { kind: kind_str(kind), text: text.to_string() };
    let (code, name) = if let Ok(code) = text.parse::<i32>() {
        (code, name_of(kind, code))
    } else {
        let info = find_name(kind, text).ok_or_else(unknown)?;
        (info.code, Some(info.name))
    };
    if is_error(kind, code) {
        return Ok(code);
    }
    let not_error = match kind {
        // UCX: 0, UCS_INPROGRESS and any other non-negative value; below -100 is not a UCX status at all.
        Kind::Ucx => code >= 0,
        // CUDA: only the success code; unlisted numbers are unknown to the application.
        Kind::Cuda => code == 0,
    };
    if not_error {
        Err(CodeError::NotAnError { kind: kind_str(kind), code, name })
    } else {
        Err(unknown())
    }
}

/// Parses a comma-separated list of codes (`-3,-6,-20` or `UCS_ERR_IO_ERROR, UCS_ERR_TIMED_OUT`), each as
/// [`parse_code`] does. Blank items are skipped; 1..=[`POOL_CAP`] codes must remain. Duplicates are kept: they
/// weight the pool.
pub fn parse_code_list(kind: Kind, text: &str) -> Result<Vec<i32>, CodeError> {
    let items: Vec<&str> = text.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
    if items.is_empty() {
        return Err(CodeError::Empty);
    }
    if items.len() > POOL_CAP {
        return Err(CodeError::TooMany { given: items.len(), max: POOL_CAP });
    }
    items.into_iter().map(|item| parse_code(kind, item)).collect()
}

/// A code a user gave that cannot go into an error pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// A valid status of the kind that is not a failure, e.g. `UCS_OK`, `UCS_INPROGRESS`, `cudaSuccess`.
    #[error("{code} is not an error for {kind}{}", it_is(.name))]
    NotAnError {
        /// `ucx` or `cuda`.
        kind: &'static str,
        /// The code given (or that the name given stands for).
        code: i32,
        /// Its name, when it has one.
        name: Option<&'static str>,
    },
    /// Neither a known name nor a number the kind accepts.
    #[error("unknown {kind} status code '{text}' (give {})", example(kind))]
    Unknown {
        /// `ucx` or `cuda`.
        kind: &'static str,
        /// What was given (trimmed).
        text: String,
    },
    /// No codes at all.
    #[error("the error-code list is empty")]
    Empty,
    /// More codes than a pool holds.
    #[error("too many error codes: {given} given, at most {max}")]
    TooMany {
        /// How many were given.
        given: usize,
        /// [`POOL_CAP`].
        max: usize,
    },
}

/// The ` (it is NAME)` part of [`CodeError::NotAnError`]'s message.
fn it_is(name: &Option<&'static str>) -> String {
    name.map(|n| format!(" (it is {n})")).unwrap_or_default()
}

/// What to give instead, in [`CodeError::Unknown`]'s message.
fn example(kind: &str) -> &'static str {
    if kind == "ucx" {
        "a number like -3 or a name like UCS_ERR_IO_ERROR"
    } else {
        "a number like 100 or a name like cudaErrorNoDevice or CUDA_ERROR_NO_DEVICE"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_tables() -> [(&'static str, &'static [CodeInfo]); 3] {
        [("UCX_STATUS", UCX_STATUS), ("CUDA_RUNTIME", CUDA_RUNTIME), ("CUDA_DRIVER", CUDA_DRIVER)]
    }

    fn code_named(table: &[CodeInfo], name: &str) -> Option<i32> {
        table.iter().find(|i| i.name == name).map(|i| i.code)
    }

    #[test]
    fn no_duplicate_codes_or_names_and_no_blank_fields() {
        for (label, table) in all_tables() {
            let codes: HashSet<i32> = table.iter().map(|i| i.code).collect();
            let names: HashSet<&str> = table.iter().map(|i| i.name).collect();
            assert_eq!(codes.len(), table.len(), "duplicate code in {label}");
            assert_eq!(names.len(), table.len(), "duplicate name in {label}");
            for info in table {
                assert!(!info.description.trim().is_empty(), "{label}: {} has no description", info.name);
                assert_eq!(info.name.trim(), info.name);
            }
        }
    }

    #[test]
    fn tables_are_sorted() {
        assert!(CUDA_RUNTIME.windows(2).all(|w| w[0].code < w[1].code), "CUDA_RUNTIME not ascending");
        assert!(CUDA_DRIVER.windows(2).all(|w| w[0].code < w[1].code), "CUDA_DRIVER not ascending");
        // UCX in header order: UCS_OK, UCS_INPROGRESS, then the errors descending.
        assert_eq!(UCX_STATUS[0].code, 0);
        assert_eq!(UCX_STATUS[1].code, 1);
        assert!(UCX_STATUS[2..].windows(2).all(|w| w[0].code > w[1].code), "UCX errors not descending");
    }

    #[test]
    fn table_sizes() {
        assert_eq!(UCX_STATUS.len(), 33);
        assert_eq!(CUDA_RUNTIME.len(), 134);
        assert_eq!(CUDA_DRIVER.len(), 100);
    }

    #[test]
    fn ucx_anchor_values() {
        let expect = [
            ("UCS_OK", 0),
            ("UCS_INPROGRESS", 1),
            ("UCS_ERR_NO_MESSAGE", -1),
            ("UCS_ERR_IO_ERROR", -3),
            ("UCS_ERR_UNREACHABLE", -6),
            ("UCS_ERR_TIMED_OUT", -20),
            ("UCS_ERR_NOT_CONNECTED", -24),
            ("UCS_ERR_CONNECTION_RESET", -25),
            ("UCS_ERR_FIRST_LINK_FAILURE", -40),
            ("UCS_ERR_LAST_LINK_FAILURE", -59),
            ("UCS_ERR_FIRST_ENDPOINT_FAILURE", -60),
            ("UCS_ERR_ENDPOINT_TIMEOUT", -80),
            ("UCS_ERR_LAST_ENDPOINT_FAILURE", -89),
            ("UCS_ERR_LAST", -100),
        ];
        for (name, code) in expect {
            assert_eq!(code_named(UCX_STATUS, name), Some(code), "{name}");
        }
        // -1..=-25 are all named.
        for code in -25..=-1 {
            assert!(find_code(UCX_STATUS, code).is_some(), "{code} missing");
        }
        assert_eq!(find_code(UCX_STATUS, -3).map(|i| i.description), Some("Input/output error"));
        assert_eq!(find_code(UCX_STATUS, -6).map(|i| i.description), Some("Destination is unreachable"));
        // Every negative entry lies in the reserved range, so is_error agrees with the table.
        for info in UCX_STATUS {
            assert_eq!(is_error(Kind::Ucx, info.code), info.code < 0, "{}", info.name);
        }
    }

    #[test]
    fn cuda_anchor_values() {
        let runtime = [
            ("cudaSuccess", 0),
            ("cudaErrorInvalidValue", 1),
            ("cudaErrorMemoryAllocation", 2),
            ("cudaErrorInitializationError", 3),
            ("cudaErrorInsufficientDriver", 35),
            ("cudaErrorNoDevice", 100),
            ("cudaErrorInvalidDevice", 101),
            ("cudaErrorECCUncorrectable", 214),
            ("cudaErrorNvlinkUncorrectable", 220),
            ("cudaErrorIllegalAddress", 700),
            ("cudaErrorLaunchTimeout", 702),
            ("cudaErrorLaunchFailure", 719),
            ("cudaErrorUnknown", 999),
            ("cudaErrorApiFailureBase", 10000),
        ];
        for (name, code) in runtime {
            assert_eq!(code_named(CUDA_RUNTIME, name), Some(code), "{name}");
        }
        let driver = [
            ("CUDA_SUCCESS", 0),
            ("CUDA_ERROR_INVALID_VALUE", 1),
            ("CUDA_ERROR_OUT_OF_MEMORY", 2),
            ("CUDA_ERROR_NOT_INITIALIZED", 3),
            ("CUDA_ERROR_NO_DEVICE", 100),
            ("CUDA_ERROR_ECC_UNCORRECTABLE", 214),
            ("CUDA_ERROR_NVLINK_UNCORRECTABLE", 220),
            ("CUDA_ERROR_ILLEGAL_ADDRESS", 700),
            ("CUDA_ERROR_LAUNCH_TIMEOUT", 702),
            ("CUDA_ERROR_LAUNCH_FAILED", 719),
            ("CUDA_ERROR_UNKNOWN", 999),
        ];
        for (name, code) in driver {
            assert_eq!(code_named(CUDA_DRIVER, name), Some(code), "{name}");
        }
        // Descriptions are cudaGetErrorString's.
        assert_eq!(find_code(CUDA_RUNTIME, 100).map(|i| i.description), Some("no CUDA-capable device is detected"));
        assert_eq!(
            find_code(CUDA_RUNTIME, 910).map(|i| i.description),
            Some(
                "the graph update was not performed because it included changes which violated constraints specific \
                 to instantiated graph update"
            )
        );
        // The pre-10.1 value of cudaErrorLaunchTimeout is gone: 6 is cudaErrorProfilerNotInitialized.
        assert_eq!(name_of(Kind::Cuda, 6), Some("cudaErrorProfilerNotInitialized"));
    }

    #[test]
    fn default_pools_are_errors() {
        assert_eq!(default_pool(Kind::Ucx), &[-3, -6, -20]);
        assert_eq!(default_pool(Kind::Cuda), &[100]);
        for kind in [Kind::Ucx, Kind::Cuda] {
            assert!(!default_pool(kind).is_empty() && default_pool(kind).len() <= POOL_CAP);
            assert!(default_pool(kind).iter().all(|&c| is_error(kind, c)));
        }
    }

    #[test]
    fn is_error_rules() {
        assert!(!is_error(Kind::Ucx, 0));
        assert!(!is_error(Kind::Ucx, 1));
        assert!(is_error(Kind::Ucx, -3));
        assert!(is_error(Kind::Ucx, -41), "unnamed link failure codes are errors");
        assert!(is_error(Kind::Ucx, -100));
        assert!(!is_error(Kind::Ucx, -101));
        assert!(!is_error(Kind::Cuda, 0));
        assert!(is_error(Kind::Cuda, 100));
        assert!(is_error(Kind::Cuda, 916), "driver-only code");
        assert!(is_error(Kind::Cuda, 10000), "runtime-only code");
        assert!(!is_error(Kind::Cuda, 10));
        assert!(!is_error(Kind::Cuda, -1));
    }

    #[test]
    fn name_of_values() {
        assert_eq!(name_of(Kind::Ucx, -3), Some("UCS_ERR_IO_ERROR"));
        assert_eq!(name_of(Kind::Ucx, 1), Some("UCS_INPROGRESS"));
        assert_eq!(name_of(Kind::Ucx, -41), None);
        assert_eq!(name_of(Kind::Cuda, 0), Some("cudaSuccess"));
        assert_eq!(name_of(Kind::Cuda, 100), Some("cudaErrorNoDevice"));
        assert_eq!(name_of(Kind::Cuda, 202), Some("CUDA_ERROR_CONTEXT_ALREADY_CURRENT"));
        assert_eq!(name_of(Kind::Cuda, 916), Some("CUDA_ERROR_KEY_ROTATION"));
        assert_eq!(name_of(Kind::Cuda, 12345), None);
    }

    #[test]
    fn error_codes_lists_errors_only() {
        let ucx: Vec<_> = error_codes(Kind::Ucx).collect();
        assert_eq!(ucx.len(), UCX_STATUS.len() - 2);
        assert!(ucx.iter().all(|i| i.code < 0));
        let cuda: Vec<_> = error_codes(Kind::Cuda).collect();
        assert_eq!(cuda.len(), CUDA_RUNTIME.len() + CUDA_DRIVER.len() - 2);
        assert!(cuda.iter().all(|i| i.code != 0));
        assert_eq!(cuda.first().map(|i| i.name), Some("cudaErrorInvalidValue"));
        assert_eq!(cuda.last().map(|i| i.name), Some("CUDA_ERROR_UNKNOWN"));
        // Every listed name parses back to its own code.
        for kind in [Kind::Ucx, Kind::Cuda] {
            for info in error_codes(kind) {
                assert_eq!(parse_code(kind, info.name), Ok(info.code), "{}", info.name);
            }
        }
    }

    #[test]
    fn parse_by_number() {
        assert_eq!(parse_code(Kind::Ucx, "-3"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, "  -20\t"), Ok(-20));
        assert_eq!(parse_code(Kind::Ucx, "-41"), Ok(-41));
        assert_eq!(parse_code(Kind::Ucx, "-100"), Ok(-100));
        assert_eq!(parse_code(Kind::Cuda, "100"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, " 702 "), Ok(702));
        assert_eq!(parse_code(Kind::Cuda, "916"), Ok(916));
    }

    #[test]
    fn parse_by_name() {
        assert_eq!(parse_code(Kind::Ucx, "UCS_ERR_IO_ERROR"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, "ucs_err_timed_out"), Ok(-20));
        assert_eq!(parse_code(Kind::Ucx, "IO_ERROR"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, "io_error"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, " Unreachable "), Ok(-6));
        assert_eq!(parse_code(Kind::Ucx, "endpoint_timeout"), Ok(-80));
        assert_eq!(parse_code(Kind::Cuda, "cudaErrorNoDevice"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "NoDevice"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "nodevice"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "CUDAERRORLAUNCHTIMEOUT"), Ok(702));
        assert_eq!(parse_code(Kind::Cuda, "CUDA_ERROR_NO_DEVICE"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "NO_DEVICE"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "nvlink_uncorrectable"), Ok(220));
        assert_eq!(parse_code(Kind::Cuda, "EccUncorrectable"), Ok(214));
        assert_eq!(parse_code(Kind::Cuda, "KEY_ROTATION"), Ok(916));
    }

    #[test]
    fn short_names_never_clash() {
        // A spelling that several entries of one kind answer to must mean the same code in all of them.
        for kind in [Kind::Ucx, Kind::Cuda] {
            let mut seen: Vec<(String, i32)> = Vec::new();
            for (table, prefixes) in tables(kind) {
                for info in table {
                    for form in name_forms(info.name, prefixes) {
                        let key = form.to_ascii_lowercase();
                        if let Some((_, code)) = seen.iter().find(|(k, _)| *k == key) {
                            assert_eq!(*code, info.code, "{form} is ambiguous");
                        }
                        seen.push((key, info.code));
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_non_errors() {
        let ucx_ok = CodeError::NotAnError { kind: "ucx", code: 0, name: Some("UCS_OK") };
        assert_eq!(parse_code(Kind::Ucx, "0"), Err(ucx_ok.clone()));
        assert_eq!(parse_code(Kind::Ucx, "UCS_OK"), Err(ucx_ok.clone()));
        assert_eq!(parse_code(Kind::Ucx, "ok"), Err(ucx_ok));
        let inprogress = CodeError::NotAnError { kind: "ucx", code: 1, name: Some("UCS_INPROGRESS") };
        assert_eq!(parse_code(Kind::Ucx, "1"), Err(inprogress.clone()));
        assert_eq!(parse_code(Kind::Ucx, "inprogress"), Err(inprogress));
        assert_eq!(parse_code(Kind::Ucx, "7"), Err(CodeError::NotAnError { kind: "ucx", code: 7, name: None }));
        let success = CodeError::NotAnError { kind: "cuda", code: 0, name: Some("cudaSuccess") };
        assert_eq!(parse_code(Kind::Cuda, "0"), Err(success.clone()));
        assert_eq!(parse_code(Kind::Cuda, "cudaSuccess"), Err(success));
        assert_eq!(
            parse_code(Kind::Cuda, "CUDA_SUCCESS"),
            Err(CodeError::NotAnError { kind: "cuda", code: 0, name: Some("CUDA_SUCCESS") })
        );
    }

    #[test]
    fn rejects_unknown() {
        let unknown = |kind: &'static str, text: &str| Err(CodeError::Unknown { kind, text: text.to_string() });
        assert_eq!(parse_code(Kind::Ucx, "FOO"), unknown("ucx", "FOO"));
        assert_eq!(parse_code(Kind::Ucx, " -101 "), unknown("ucx", "-101"));
        assert_eq!(parse_code(Kind::Ucx, "cudaErrorNoDevice"), unknown("ucx", "cudaErrorNoDevice"));
        assert_eq!(parse_code(Kind::Ucx, ""), unknown("ucx", ""));
        assert_eq!(parse_code(Kind::Ucx, "99999999999"), unknown("ucx", "99999999999"));
        assert_eq!(parse_code(Kind::Ucx, "ERR"), unknown("ucx", "ERR"));
        assert_eq!(parse_code(Kind::Cuda, "10"), unknown("cuda", "10"));
        assert_eq!(parse_code(Kind::Cuda, "-3"), unknown("cuda", "-3"));
        assert_eq!(parse_code(Kind::Cuda, "UCS_ERR_IO_ERROR"), unknown("cuda", "UCS_ERR_IO_ERROR"));
        assert_eq!(parse_code(Kind::Cuda, "cudaError"), unknown("cuda", "cudaError"));
        assert_eq!(parse_code(Kind::Cuda, "0x64"), unknown("cuda", "0x64"));
    }

    #[test]
    fn parse_lists() {
        assert_eq!(parse_code_list(Kind::Ucx, "-3,-6,-20"), Ok(vec![-3, -6, -20]));
        assert_eq!(parse_code_list(Kind::Ucx, "UCS_ERR_IO_ERROR, UCS_ERR_TIMED_OUT"), Ok(vec![-3, -20]));
        assert_eq!(parse_code_list(Kind::Ucx, "io_error, -3 ,IO_ERROR,"), Ok(vec![-3, -3, -3]));
        assert_eq!(parse_code_list(Kind::Cuda, "NoDevice, CUDA_ERROR_ECC_UNCORRECTABLE,220"), Ok(vec![100, 214, 220]));
        let max = vec!["-3"; POOL_CAP].join(",");
        assert_eq!(parse_code_list(Kind::Ucx, &max).map(|v| v.len()), Ok(POOL_CAP));
    }

    #[test]
    fn rejects_bad_lists() {
        assert_eq!(parse_code_list(Kind::Ucx, ""), Err(CodeError::Empty));
        assert_eq!(parse_code_list(Kind::Ucx, " , ,"), Err(CodeError::Empty));
        let forty = vec!["-3"; 40].join(",");
        assert_eq!(parse_code_list(Kind::Ucx, &forty), Err(CodeError::TooMany { given: 40, max: POOL_CAP }));
        assert_eq!(
            parse_code_list(Kind::Ucx, "-3,0"),
            Err(CodeError::NotAnError { kind: "ucx", code: 0, name: Some("UCS_OK") })
        );
        assert_eq!(
            parse_code_list(Kind::Cuda, "100,FOO"),
            Err(CodeError::Unknown { kind: "cuda", text: "FOO".to_string() })
        );
    }

    #[test]
    fn messages() {
        let msg = |r: Result<i32, CodeError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg(parse_code(Kind::Ucx, "0")), "0 is not an error for ucx (it is UCS_OK)");
        assert_eq!(msg(parse_code(Kind::Ucx, "1")), "1 is not an error for ucx (it is UCS_INPROGRESS)");
        assert_eq!(msg(parse_code(Kind::Ucx, "5")), "5 is not an error for ucx");
        assert_eq!(msg(parse_code(Kind::Cuda, "0")), "0 is not an error for cuda (it is cudaSuccess)");
        assert_eq!(
            msg(parse_code(Kind::Ucx, "FOO")),
            "unknown ucx status code 'FOO' (give a number like -3 or a name like UCS_ERR_IO_ERROR)"
        );
        assert!(
            msg(parse_code(Kind::Cuda, "FOO")).starts_with("unknown cuda status code 'FOO' (give a number like 100")
        );
        assert_eq!(CodeError::Empty.to_string(), "the error-code list is empty");
        assert_eq!(CodeError::TooMany { given: 40, max: 32 }.to_string(), "too many error codes: 40 given, at most 32");
    }
}
