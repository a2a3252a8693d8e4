//! The flight recorder as users see it: reading a process's ring (alive or dead), the seed's three dump formats
//! (`summary`, `pattern`, `records`, with extra fields), and turning a recording or a pattern file into an exact
//! replay program.
//!
//! The ring holds only *armed* calls — exactly the calls a replay program counts — so a recording replayed into a
//! process running the same call sequence reproduces every status, codes included.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use shm_proto::config;
use shm_proto::layout::{Site, REPLAY_CAP};
use shm_proto::ring::{Record, RingCursor};

use crate::error::Error;
use crate::targets::Target;

/// What a reader got from a ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// The records still in the ring, oldest first.
    pub records: Vec<Record>,
    /// Records written since the last clear, including those no longer available.
    pub recorded: u64,
    /// Records written since the last clear that this reader did not get (overwritten, dropped or torn).
    pub missed: u64,
}

/// Reads everything `target`'s ring holds since its last clear. A dead process's unfinished records count as missed.
pub fn read(target: &Target) -> Recording {
    let ring = &target.segment().ring;
    let mut cursor = RingCursor::oldest(ring);
    let mut records = Vec::new();
    cursor.drain(ring, !target.alive, |record| records.push(record));
    let recorded = cursor.position().saturating_sub(ring.cleared_below());
    let missed = recorded.saturating_sub(records.len() as u64);
    Recording { records, recorded, missed }
}

/// The newest `count` records of `target`'s ring, without reading the older ones (what a live view needs every
/// interval); `recorded` and `missed` count the whole recording since its last clear, as [`read`] does.
pub fn newest(target: &Target, count: u64) -> Recording {
    let ring = &target.segment().ring;
    let mut cursor = RingCursor::oldest(ring);
    // The newest `count` of the merged stream are among the newest `count` of each lane.
    cursor.skip_to_newest(ring, count);
    let mut records = Vec::new();
    cursor.drain(ring, !target.alive, |record| records.push(record));
    records.drain(..records.len().saturating_sub(usize::try_from(count).unwrap_or(usize::MAX)));
    let recorded = cursor.position().saturating_sub(ring.cleared_below());
    // Overwritten ones, and those the newest read found torn or dropped (nothing older was read).
    let missed = ring.overwritten().saturating_add(cursor.missed).min(recorded);
    Recording { records, recorded, missed }
}

/// The dump formats of `record dump` (also the command line's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// Statistics.
    Summary,
    /// X/O pattern and codes (for `replay --from-file`).
    Pattern,
    /// Every recorded call.
    Records,
}

impl DumpFormat {
    /// The name `record dump` takes.
    pub fn name(self) -> &'static str {
        match self {
            DumpFormat::Summary => "summary",
            DumpFormat::Pattern => "pattern",
            DumpFormat::Records => "records",
        }
    }

    /// Parses `summary`, `pattern` or `records` (any case).
    pub fn parse(text: &str) -> Result<DumpFormat, Error> {
        <DumpFormat as clap::ValueEnum>::from_str(text.trim(), true)
            .map_err(|_| Error::usage(format!("unknown dump format '{}' (summary, pattern or records)", text.trim())))
    }
}

/// Calls and faults of one hook among the dumped records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HookTally {
    /// Recorded calls.
    pub calls: u64,
    /// Of which injected.
    pub faults: u64,
}

/// The seed's summary format — its README's fields and those v0.3.5 added (`faults_injected`, `pattern`,
/// `error_codes_used`, `buffer_wrapped`) — plus `pid`, `kind`, `missed`, per-hook tallies and faults per site.
///
/// `total_calls` counts every call recorded since the last clear; `pattern_length` the records dumped (what a
/// replay would play); `fault_count` (= `faults_injected`) and `fault_rate` are over those dumped records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Whether the process is recording now.
    pub recording_enabled: bool,
    /// Calls recorded since the last clear.
    pub total_calls: u64,
    /// Injected faults among the dumped records.
    pub fault_count: u64,
    /// The same, under the seed v0.3.5's name.
    pub faults_injected: u64,
    /// `fault_count / pattern_length` (0 when empty).
    pub fault_rate: f64,
    /// Records dumped.
    pub pattern_length: u64,
    /// The dumped records as X (injected) / O (passed), as v0.3.5 shows it.
    pub pattern: String,
    /// Distinct injected codes, as strings like the seed's README, in order of first appearance.
    pub unique_error_codes: Vec<String>,
    /// The same codes as numbers (v0.3.5).
    pub error_codes_used: Vec<i32>,
    /// Whether older records were overwritten (or otherwise lost) since the last clear (v0.3.5).
    pub buffer_wrapped: bool,
    /// The process.
    pub pid: u32,
    /// Its shim.
    pub kind: &'static str,
    /// Recorded calls no longer available.
    pub missed: u64,
    /// Per hook name, among the dumped records.
    pub hooks: BTreeMap<String, HookTally>,
    /// Injected faults among the dumped records per fault site (`post`, `completion`, `endpoint`; sites without
    /// faults are left out).
    pub faults_by_site: BTreeMap<&'static str, u64>,
}

/// The seed's pattern format, plus `fault_codes` (the exact code of each `X`, in order), `pid`, `kind`, `missed`,
/// and where the faults surfaced: `site` when every fault shares one site other than `post`, `fault_sites` (the site
/// of each `X`, in order) when they differ. Neither is written for faults at `post` alone, so such a dump reads as
/// the seed's and as one written before fault sites existed; read back, a fault with neither is at `post`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternDump {
    /// `X` for an injected call, `O` for a passed one.
    pub pattern: String,
    /// Distinct injected codes in order of first appearance (the process's pool when nothing was injected).
    pub error_codes: Vec<i64>,
    /// Length of the pattern.
    pub total_calls: u64,
    /// The code of each `X`, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_codes: Option<Vec<i64>>,
    /// The process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Its shim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Recorded calls no longer available (the pattern starts after them).
    #[serde(default)]
    pub missed: u64,
    /// The site every fault surfaced at, when it is one and not `post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The site of each `X`, in order, when the faults surfaced at different sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_sites: Option<Vec<String>>,
}

/// One record in the seed's records format (with v0.3.5's `function_name` and `transfer_size`), plus `hook`,
/// `thread` and `size`. (v0.3.5's `remote_addr`, `endpoint` and `rkey` are not recorded by faultline's shims.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordView {
    /// 1-based position in the process's recording.
    pub sequence: u64,
    /// Wall-clock time of the call, µs since the Unix epoch (derived from `monotonic_ns` with the clocks' offset at
    /// dump time, so two dumps may differ by a microsecond).
    pub timestamp_us: u64,
    /// Whether faultline failed the call.
    pub fault_injected: bool,
    /// The injected code (0 when passed).
    pub error_code: i32,
    /// The intercepted function (v0.3.5's name for `hook`).
    pub function_name: String,
    /// The call's size argument (v0.3.5's name for `size`).
    pub transfer_size: u64,
    /// The intercepted function.
    pub hook: String,
    /// Kernel thread id of the caller.
    pub thread: u32,
    /// The call's size argument (bytes), 0 where it has none.
    pub size: u64,
    /// `CLOCK_MONOTONIC` time of the call as the shim recorded it (exact, comparable across processes of one boot).
    pub monotonic_ns: u64,
    /// Where the injected fault surfaced (`post`, `completion`, `endpoint`); `null` for a passed call.
    pub site: Option<&'static str>,
}

/// The seed's records format, plus `pid`, `kind`, `missed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordsDump {
    /// The records, oldest first.
    pub records: Vec<RecordView>,
    /// How many records are listed.
    pub total_count: usize,
    /// The process.
    pub pid: u32,
    /// Its shim.
    pub kind: &'static str,
    /// Recorded calls no longer available.
    pub missed: u64,
}

/// Dumps `target`'s recording in `format`, limited to the last `count` records if given.
pub fn dump(target: &Target, format: DumpFormat, count: Option<u64>) -> Result<serde_json::Value, Error> {
    let recording = read(target);
    let window = last(&recording.records, count);
    let value = match format {
        DumpFormat::Summary => serde_json::to_value(summary(target, &recording, window)?),
        DumpFormat::Pattern => serde_json::to_value(pattern(target, &recording, window)?),
        DumpFormat::Records => serde_json::to_value(records(target, &recording, window)),
    };
    value.map_err(|e| Error::usage(format!("cannot encode the dump: {e}")))
}

fn last(records: &[Record], count: Option<u64>) -> &[Record] {
    let keep = count.map_or(records.len(), |n| usize::try_from(n).unwrap_or(usize::MAX).min(records.len()));
    &records[records.len() - keep..]
}

fn distinct_fault_codes(records: &[Record]) -> Vec<i32> {
    let mut seen = Vec::new();
    for record in records.iter().filter(|r| r.injected) {
        if !seen.contains(&record.code) {
            seen.push(record.code);
        }
    }
    seen
}

/// The summary format.
pub fn summary(target: &Target, recording: &Recording, window: &[Record]) -> Result<Summary, Error> {
    let strategy = crate::actions::current_strategy(target)?;
    let hook_names = target.segment().header.hook_names();
    let mut hooks = BTreeMap::new();
    for record in window {
        let tally: &mut HookTally = hooks.entry(hook_name(&hook_names, record.hook)).or_default();
        tally.calls += 1;
        tally.faults += u64::from(record.injected);
    }
    let fault_count = window.iter().filter(|r| r.injected).count() as u64;
    let faults_by_site = SiteTally::of(window).0.into_iter().map(|(site, faults)| (site.name(), faults)).collect();
    let pattern_length = window.len() as u64;
    let codes = distinct_fault_codes(window);
    Ok(Summary {
        recording_enabled: strategy.recording,
        total_calls: recording.recorded,
        fault_count,
        faults_injected: fault_count,
        fault_rate: if pattern_length == 0 { 0.0 } else { fault_count as f64 / pattern_length as f64 },
        pattern_length,
        pattern: x_o(window),
        unique_error_codes: codes.iter().map(i32::to_string).collect(),
        error_codes_used: codes,
        buffer_wrapped: recording.missed > 0,
        pid: target.pid(),
        kind: target.kind().name(),
        missed: recording.missed,
        hooks,
        faults_by_site,
    })
}

/// The pattern format.
pub fn pattern(target: &Target, recording: &Recording, window: &[Record]) -> Result<PatternDump, Error> {
    let mut error_codes = distinct_fault_codes(window);
    if error_codes.is_empty() {
        error_codes = crate::actions::current_strategy(target)?.pool;
    }
    let faults = window.iter().filter(|r| r.injected);
    let sites = SiteTally::of(window);
    let (site, fault_sites) = if sites.is_mixed() {
        (None, Some(faults.clone().map(|r| record_site(r).name().to_string()).collect()))
    } else {
        (sites.only().filter(|&site| site != Site::Post).map(|site| site.name().to_string()), None)
    };
    Ok(PatternDump {
        pattern: x_o(window),
        error_codes: error_codes.into_iter().map(i64::from).collect(),
        total_calls: window.len() as u64,
        fault_codes: Some(faults.map(|r| i64::from(r.code)).collect()),
        pid: Some(target.pid()),
        kind: Some(target.kind().name().to_string()),
        missed: recording.missed,
        site,
        fault_sites,
    })
}

/// The records format.
pub fn records(target: &Target, recording: &Recording, window: &[Record]) -> RecordsDump {
    let hook_names = target.segment().header.hook_names();
    let wall_minus_monotonic_ns = wall_clock_ns().saturating_sub(shm_proto::clock::monotonic_ns());
    let records: Vec<RecordView> = window
        .iter()
        .map(|r| RecordView {
            sequence: r.sequence,
            timestamp_us: r.time_ns.saturating_add(wall_minus_monotonic_ns) / 1000,
            fault_injected: r.injected,
            error_code: r.code,
            function_name: hook_name(&hook_names, r.hook),
            transfer_size: r.size,
            hook: hook_name(&hook_names, r.hook),
            thread: r.thread,
            size: r.size,
            monotonic_ns: r.time_ns,
            site: r.injected.then(|| record_site(r).name()),
        })
        .collect();
    RecordsDump {
        total_count: records.len(),
        records,
        pid: target.pid(),
        kind: target.kind().name(),
        missed: recording.missed,
    }
}

/// Where an injected record's fault surfaced (records of ABI 5 say nothing: they were all at `post`).
fn record_site(record: &Record) -> Site {
    record.site.unwrap_or(Site::Post)
}

/// Faults per site: of recorded calls, or of a pattern dump's `X`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteTally(pub BTreeMap<Site, u64>);

impl SiteTally {
    /// The faults among `records`, by the site each surfaced at.
    pub fn of(records: &[Record]) -> SiteTally {
        let mut tally = SiteTally::default();
        for record in records.iter().filter(|r| r.injected) {
            *tally.0.entry(record_site(record)).or_default() += 1;
        }
        tally
    }

    /// The faults of a pattern dump by site (see [`PatternDump`]: an `X` with neither `site` nor `fault_sites` is
    /// at `post`), checked: known site names, one per `X`, not both fields.
    pub fn of_pattern(dump: &PatternDump) -> Result<SiteTally, Error> {
        let parse = |name: &str| {
            Site::from_name(name)
                .ok_or_else(|| Error::usage(format!("fault site '{name}' is not one of post, completion, endpoint")))
        };
        let faults = dump.pattern.chars().filter(|c| c.eq_ignore_ascii_case(&'x')).count() as u64;
        let mut tally = SiteTally::default();
        match (&dump.site, &dump.fault_sites) {
            (Some(_), Some(_)) => {
                return Err(Error::usage("give \"site\" (every fault's) or \"fault_sites\" (each fault's), not both"))
            }
            (None, Some(sites)) if sites.len() as u64 != faults => {
                return Err(Error::usage(format!(
                    "fault_sites has {} sites but the pattern has {faults} X",
                    sites.len()
                )));
            }
            (None, Some(sites)) => {
                for name in sites {
                    *tally.0.entry(parse(name)?).or_default() += 1;
                }
            }
            (site, None) => {
                let site = site.as_deref().map_or(Ok(Site::Post), parse)?;
                if faults > 0 {
                    tally.0.insert(site, faults);
                }
            }
        }
        Ok(tally)
    }

    /// The one site every fault surfaced at (`None` without faults, or when they differ).
    pub fn only(&self) -> Option<Site> {
        match self.0.keys().collect::<Vec<_>>().as_slice() {
            [site] => Some(**site),
            _ => None,
        }
    }

    /// Whether the faults surfaced at more than one site.
    pub fn is_mixed(&self) -> bool {
        self.0.len() > 1
    }

    /// The site a replay of these faults plays them at: `chosen` (`replay --site`) if given, else the one site
    /// they share (`None` without faults: the target keeps its own). A recording that mixes sites is refused
    /// without `chosen`; `what` names it in the message.
    pub fn site_to_replay(&self, chosen: Option<Site>, what: &str) -> Result<Option<Site>, Error> {
        if chosen.is_some() || !self.is_mixed() {
            return Ok(chosen.or(self.only()));
        }
        let counts: Vec<String> = self.0.iter().map(|(site, faults)| format!("{} {faults}", site.name())).collect();
        Err(Error::usage(format!(
            "{what}: the recording mixes fault sites ({}); choose one with --site",
            counts.join(", ")
        )))
    }
}

/// The records as X (injected) / O (passed).
fn x_o(records: &[Record]) -> String {
    records.iter().map(|r| if r.injected { 'X' } else { 'O' }).collect()
}

fn hook_name(names: &[String], index: u16) -> String {
    names.get(usize::from(index)).cloned().unwrap_or_else(|| format!("hook#{index}"))
}

fn wall_clock_ns() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// The replay program of a recording: per recorded call, 0 if it passed, its code if it was injected.
/// `label` names the process in the error when nothing was recorded.
pub fn replay_program(recording: &Recording, label: &str) -> Result<Vec<i32>, Error> {
    if recording.records.is_empty() {
        return Err(Error::usage(format!(
            "{label}: nothing recorded to replay (turn recording on with `faultline record on`, then run)"
        )));
    }
    Ok(recording.records.iter().map(|r| if r.injected { r.code } else { 0 }).collect())
}

/// The largest file `replay --from-file` reads: room for a pattern dump of [`REPLAY_CAP`] calls at its longest,
/// pretty-printed (the pattern, and a code per call in `fault_codes` and in `error_codes`, about 17 bytes each).
pub const MAX_PATTERN_FILE_BYTES: u64 = REPLAY_CAP as u64 * 48 + 64 * 1024;

/// The replay program of a pattern-format file (what `record dump pattern -o FILE` writes, or the seed's): each `X`
/// gets its code from `fault_codes` when present, else the next code of `error_codes`, cycling (the seed's rule).
/// Reads at most [`MAX_PATTERN_FILE_BYTES`]: a larger file (or `/dev/zero`) is refused, not read into memory.
/// Also returns the faults' sites ([`SiteTally::of_pattern`]).
pub fn replay_program_from_file(path: &Path) -> Result<(Vec<i32>, SiteTally), Error> {
    let bad = |why: String| Error::usage(format!("{}: {why}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PATTERN_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_PATTERN_FILE_BYTES {
        return Err(bad(format!(
            "larger than {MAX_PATTERN_FILE_BYTES} bytes, more than any pattern dump (at most {REPLAY_CAP} calls) \
             takes; give the file `faultline record dump pattern -o FILE` wrote"
        )));
    }
    let dump: PatternDump = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not a pattern dump ({e}); make one with `faultline record dump pattern -o FILE`")))?;
    let program = replay_program_from_pattern(&dump).map_err(|e| bad(e.to_string()))?;
    let sites = SiteTally::of_pattern(&dump).map_err(|e| bad(e.to_string()))?;
    Ok((program, sites))
}

/// The replay program of a pattern dump (see [`replay_program_from_file`]).
pub fn replay_program_from_pattern(dump: &PatternDump) -> Result<Vec<i32>, Error> {
    if dump.pattern.trim().is_empty() {
        return Err(Error::usage("the pattern is empty (nothing was recorded)"));
    }
    let pattern = config::parse_pattern(&dump.pattern)?;
    let faults = pattern.iter().filter(|&&x| x).count();
    let to_code =
        |code: i64| i32::try_from(code).map_err(|_| Error::usage(format!("error code {code} is out of range")));
    let codes: Vec<i32> = match &dump.fault_codes {
        Some(fault_codes) if fault_codes.len() != faults => {
            return Err(Error::usage(format!(
                "fault_codes has {} codes but the pattern has {faults} X",
                fault_codes.len()
            )));
        }
        Some(fault_codes) => fault_codes.iter().map(|&c| to_code(c)).collect::<Result<_, _>>()?,
        None if faults > 0 && dump.error_codes.is_empty() => {
            return Err(Error::usage("the pattern has X but error_codes is empty"));
        }
        None => {
            let pool = dump.error_codes.iter().map(|&c| to_code(c)).collect::<Result<Vec<_>, _>>()?;
            (0..faults).map(|i| pool[i % pool.len()]).collect()
        }
    };
    let mut next_code = codes.into_iter();
    Ok(pattern.into_iter().map(|x| if x { next_code.next().unwrap_or(0) } else { 0 }).collect())
}

/// Checks that `path` can name the file a dump is written to: not a directory, and with a file name.
pub fn check_output(path: &Path) -> Result<(), Error> {
    if path.is_dir() || path.file_name().is_none() {
        return Err(Error::usage(format!("{}: is a directory; name a file to write the dump to", path.display())));
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so a reader never sees a
/// half-written file and an existing file is replaced whole.
///
/// The temporary file has an unpredictable name and is created with `O_EXCL`: in a directory others can write to
/// (`/tmp`), a symlink planted where the file will be created cannot redirect the write (a predictable name could,
/// and root's dump would overwrite the link's target). A symlink at `path` itself is replaced, not followed.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    check_output(path)?;
    let io_error = |cause| Error::Io { path: path.to_path_buf(), cause };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".faultline.tmp")
        // What `File::create` gives (before the umask): the dump is as readable as any file the user writes.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io_error)?;
    temp.write_all(text.as_bytes()).and_then(|()| temp.as_file().sync_all()).map_err(io_error)?;
    // On failure the temporary file is dropped, which removes it.
    temp.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(pattern: &str, error_codes: &[i64], fault_codes: Option<&[i64]>) -> PatternDump {
        PatternDump {
            pattern: pattern.into(),
            error_codes: error_codes.to_vec(),
            total_calls: pattern.len() as u64,
            fault_codes: fault_codes.map(<[i64]>::to_vec),
            pid: None,
            kind: None,
            missed: 0,
            site: None,
            fault_sites: None,
        }
    }

    #[test]
    fn fault_codes_give_each_x_its_exact_code() {
        let program = replay_program_from_pattern(&dump("XOXX", &[-3], Some(&[-6, -20, -3]))).unwrap();
        assert_eq!(program, vec![-6, 0, -20, -3]);
    }

    #[test]
    fn without_fault_codes_the_pool_cycles_over_the_xs_like_the_seed() {
        let program = replay_program_from_pattern(&dump("XOXXX", &[-4, -15], None)).unwrap();
        assert_eq!(program, vec![-4, 0, -15, -4, -15]);
    }

    #[test]
    fn inconsistent_or_empty_patterns_are_refused() {
        assert!(replay_program_from_pattern(&dump("XOX", &[-3], Some(&[-3]))).is_err());
        assert!(replay_program_from_pattern(&dump("", &[-3], None)).is_err());
        assert!(replay_program_from_pattern(&dump("XQX", &[-3], None)).is_err());
        assert!(replay_program_from_pattern(&dump("XO", &[], None)).is_err());
        assert!(replay_program_from_pattern(&dump("XO", &[1 << 40], None)).is_err());
    }

    #[test]
    fn the_seed_pattern_document_parses() {
        let seed = r#"{"pattern": "OOXOOOXOOOOXOO", "error_codes": [-3, -6, -20], "total_calls": 14}"#;
        let parsed: PatternDump = serde_json::from_str(seed).unwrap();
        let program = replay_program_from_pattern(&parsed).unwrap();
        assert_eq!(program.iter().filter(|&&c| c != 0).copied().collect::<Vec<_>>(), vec![-3, -6, -20]);
    }

    fn injected(site: Option<Site>) -> Record {
        Record { injected: site.is_some(), site, code: -3, ..Record::default() }
    }

    #[test]
    fn faults_are_tallied_by_site_and_a_mixed_recording_needs_a_chosen_site() {
        let records = [
            injected(Some(Site::Completion)),
            injected(None),
            injected(Some(Site::Post)),
            injected(Some(Site::Completion)),
        ];
        let tally = SiteTally::of(&records);
        assert_eq!(tally.0, BTreeMap::from([(Site::Post, 1), (Site::Completion, 2)]));
        assert!(tally.is_mixed() && tally.only().is_none());
        let error = tally.site_to_replay(None, "pid 7 (app, ucx)").unwrap_err();
        assert_eq!(error.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(
            error.to_string(),
            "pid 7 (app, ucx): the recording mixes fault sites (post 1, completion 2); choose one with --site"
        );
        assert_eq!(tally.site_to_replay(Some(Site::Endpoint), "x").unwrap(), Some(Site::Endpoint));

        let one = SiteTally::of(&records[..1]);
        assert_eq!(
            (one.only(), one.site_to_replay(None, "x").unwrap()),
            (Some(Site::Completion), Some(Site::Completion))
        );
        let none = SiteTally::of(&[injected(None)]);
        assert_eq!(none.site_to_replay(None, "x").unwrap(), None, "no faults: the target keeps its site");
    }

    #[test]
    fn a_pattern_dumps_sites_are_read_and_checked() {
        let tally = |dump: &PatternDump| SiteTally::of_pattern(dump).map(|t| t.0);
        assert_eq!(tally(&dump("XOX", &[-3], None)).unwrap(), BTreeMap::from([(Site::Post, 2)]), "the seed's: post");
        assert_eq!(tally(&dump("OO", &[-3], None)).unwrap(), BTreeMap::new());
        let at_completion = PatternDump { site: Some("completion".into()), ..dump("XOX", &[-3], None) };
        assert_eq!(tally(&at_completion).unwrap(), BTreeMap::from([(Site::Completion, 2)]));
        let mixed =
            PatternDump { fault_sites: Some(vec!["post".into(), "endpoint".into()]), ..dump("XX", &[-3], None) };
        assert_eq!(tally(&mixed).unwrap(), BTreeMap::from([(Site::Post, 1), (Site::Endpoint, 1)]));

        let short = PatternDump { fault_sites: Some(vec!["post".into()]), ..dump("XX", &[-3], None) };
        assert!(tally(&short).unwrap_err().to_string().contains("fault_sites has 1 sites but the pattern has 2 X"));
        let unknown = PatternDump { site: Some("callback".into()), ..dump("X", &[-3], None) };
        assert!(tally(&unknown).unwrap_err().to_string().contains("fault site 'callback' is not one of"));
        let both = PatternDump { fault_sites: Some(vec!["post".into()]), ..at_completion.clone() };
        assert!(tally(&both).unwrap_err().to_string().contains("not both"));
        // Post-only dumps keep the seed's shape: neither field is written.
        let written = serde_json::to_value(dump("XO", &[-3], Some(&[-3]))).unwrap();
        assert!(written.get("site").is_none() && written.get("fault_sites").is_none(), "{written}");
        assert_eq!(serde_json::to_value(&at_completion).unwrap()["site"], "completion");
    }

    #[test]
    fn last_keeps_the_newest_records() {
        let records: Vec<Record> = (1..=5).map(|sequence| Record { sequence, ..Record::default() }).collect();
        assert_eq!(last(&records, Some(2)).iter().map(|r| r.sequence).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(last(&records, Some(50)).len(), 5);
        assert_eq!(last(&records, None).len(), 5);
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_does_not_follow_a_symlink_planted_where_the_temporary_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // The temporary name faultline used to write through: `.<name>.faultline-<pid>.tmp`.
        let planted = dir.path().join(format!(".dump.json.faultline-{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let path = dir.path().join("dump.json");
        write_atomically(&path, "{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "the link's target is untouched");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink(), "a file, not the link");
        let names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert_eq!(names.len(), 3, "no temporary file left behind: {names:?}");
    }

    #[test]
    fn a_symlink_at_the_output_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("dump.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomically(&path, "{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
    }

    #[test]
    fn a_directory_is_no_output_file() {
        let dir = tempfile::tempdir().unwrap();
        for path in [Path::new("/"), dir.path(), Path::new(".."), Path::new("x/..")] {
            let error = write_atomically(path, "{}").unwrap_err();
            assert_eq!(error.exit_code(), crate::error::EXIT_USAGE, "{}", path.display());
            assert!(error.to_string().contains("is a directory"), "{error}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
