//! Segment lifecycle against real files: create, attach (validated), discover, liveness, cleanup, permissions.
//! Every test works in its own directory through `FAULTLINE_SHM_DIR`, so they share no files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use proptest::prelude::*;
use shm_proto::layout::{Kind, ABI_VERSION, MAGIC};
use shm_proto::segment::{self, Created, Identity, SEGMENT_SIZE};
use shm_proto::{Access, AttachOptions, SegmentError, SegmentMap, Strategy};

/// `FAULTLINE_SHM_DIR` is process-wide: tests that set it take turns.
static ENV: Mutex<()> = Mutex::new(());

fn in_dir<T>(dir: &Path, body: impl FnOnce() -> T) -> T {
    let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("FAULTLINE_SHM_DIR", dir);
    let result = body();
    std::env::remove_var("FAULTLINE_SHM_DIR");
    result
}

fn identity(pid: u32, start_time_ticks: u64) -> Identity<'static> {
    Identity {
        kind: Kind::Ucx,
        pid,
        pid_ns: shm_proto::process::own_pid_ns(),
        start_time_ticks,
        exe_name: "test-exe",
        hooks: &["ucp_get_nbx", "ucp_put_nbx"],
        default_arm_mask: [0b11, 0],
        pod: &NO_POD,
    }
}

static NO_POD: shm_proto::pod::PodIdentity = shm_proto::pod::PodIdentity {
    namespace: String::new(),
    pod: String::new(),
    container: String::new(),
    uid: String::new(),
};

fn own_identity() -> Identity<'static> {
    let pid = std::process::id();
    identity(pid, segment::start_time_ticks(&pid.to_string()).expect("we are running"))
}

fn strategy() -> Strategy {
    Strategy::defaults(&[-3, -6, -20], |_| true)
}

fn create(dir: &Path, id: &Identity<'_>) -> SegmentMap {
    let (map, created) = in_dir(dir, || SegmentMap::create(id, &strategy()).expect("create"));
    assert_eq!(created, Created::Shared(dir.join(segment::file_name(Kind::Ucx, id.pid))));
    map
}

/// A pid that certainly belongs to no process now: a child we started and reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("true runs");
    let pid = child.id();
    child.wait().expect("reaped");
    pid
}

#[test]
fn create_attach_and_read_back_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let id = own_identity();
    let _owner = create(dir.path(), &id);
    let path = dir.path().join(segment::file_name(Kind::Ucx, id.pid));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for access in [Access::ReadOnly, Access::ReadWrite] {
        let map = SegmentMap::attach(&path, access, AttachOptions::default()).expect("attach");
        let seg = map.segment();
        assert_eq!(seg.kind(), Kind::Ucx);
        assert_eq!(seg.header.exe_name(), "test-exe");
        assert_eq!(seg.header.hook_names(), vec!["ucp_get_nbx", "ucp_put_nbx"]);
        assert_eq!(seg.control.snapshot(), Some(strategy()));
        assert_eq!(seg.default_strategy(), Strategy::defaults(&[-3, -6, -20], |h| h < 2));
        assert!(segment::is_alive(&map, id.pid));
    }
}

#[test]
fn a_stale_file_with_our_pid_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let id = own_identity();
    let path = dir.path().join(segment::file_name(Kind::Ucx, id.pid));
    std::fs::write(&path, b"left behind by a dead process that had our pid").unwrap();
    let _map = create(dir.path(), &id);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), SEGMENT_SIZE as u64);
    SegmentMap::attach(&path, Access::ReadOnly, AttachOptions::default()).expect("valid now");
}

#[test]
fn without_a_usable_directory_the_segment_falls_back_to_private_memory() {
    let missing = Path::new("/nonexistent/faultline-test");
    let (map, created) = in_dir(missing, || SegmentMap::create(&own_identity(), &strategy()).expect("create"));
    assert!(matches!(created, Created::Private(ref why) if why.contains("/nonexistent")), "{created:?}");
    assert_eq!(map.path(), None);
    assert_eq!(map.segment().control.snapshot(), Some(strategy()), "the process keeps a working segment");
}

#[test]
fn discovery_liveness_and_cleanup_of_dead_processes() {
    let dir = tempfile::tempdir().unwrap();
    let live = own_identity();
    let dead = identity(dead_pid(), 12345);
    let _live_map = create(dir.path(), &live);
    drop(create(dir.path(), &dead));
    std::fs::write(dir.path().join("faultline.ucx.notapid"), b"ignored").unwrap();
    std::fs::write(dir.path().join("unrelated"), b"ignored").unwrap();

    let found = in_dir(dir.path(), || segment::discover(false));
    let pids: Vec<u32> = found.iter().map(|f| f.pid).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(pids.contains(&live.pid) && pids.contains(&dead.pid));

    // Post-mortem: the dead process's segment is still readable.
    let dead_path = dir.path().join(segment::file_name(Kind::Ucx, dead.pid));
    let map = SegmentMap::attach(&dead_path, Access::ReadOnly, AttachOptions::default()).expect("readable");
    assert!(!segment::is_alive(&map, dead.pid));

    let removed = segment::clean_dead(&found);
    assert_eq!(removed, vec![dead_path.clone()]);
    assert!(!dead_path.exists());
    assert!(dir.path().join(segment::file_name(Kind::Ucx, live.pid)).exists(), "live segments stay");
}

/// A valid segment's bytes, to corrupt in the tests below.
fn valid_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let id = own_identity();
    drop(create(dir.path(), &id));
    std::fs::read(dir.path().join(segment::file_name(Kind::Ucx, id.pid))).unwrap()
}

fn attach_bytes(bytes: &[u8]) -> Result<SegmentMap, SegmentError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faultline.ucx.1");
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    SegmentMap::attach(&path, Access::ReadOnly, AttachOptions::default())
}

#[test]
fn bad_segments_are_clear_errors() {
    let good = valid_bytes();
    assert!(attach_bytes(&good).is_ok());

    let err = attach_bytes(&good[..10]).err().expect("truncated header");
    assert!(matches!(err, SegmentError::Truncated { .. }), "{err}");
    let err = attach_bytes(&good[..SEGMENT_SIZE - 1]).err().expect("truncated body");
    assert!(err.to_string().contains("truncated segment"), "{err}");

    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xFF;
    let err = attach_bytes(&bad_magic).err().expect("bad magic");
    assert!(err.to_string().contains("not a faultline segment"), "{err}");

    let mut other_version = good.clone();
    other_version[8..12].copy_from_slice(&(ABI_VERSION + 1).to_le_bytes());
    let err = attach_bytes(&other_version).err().expect("version");
    assert!(matches!(err, SegmentError::VersionMismatch { found, .. } if found == ABI_VERSION + 1), "{err}");
    assert!(err.to_string().contains(&format!("ABI version {}", ABI_VERSION + 1)), "{err}");

    let mut bad_kind = good.clone();
    bad_kind[12..16].copy_from_slice(&7u32.to_le_bytes());
    assert!(attach_bytes(&bad_kind).err().expect("kind").to_string().contains("unknown kind 7"));

    let mut bad_size = good.clone();
    bad_size[16..24].copy_from_slice(&1u64.to_le_bytes());
    assert!(matches!(attach_bytes(&bad_size), Err(SegmentError::Corrupt { .. })));

    let mut too_long = good.clone();
    too_long.extend_from_slice(&[0; 4096]);
    assert!(matches!(attach_bytes(&too_long), Err(SegmentError::Corrupt { .. })));

    let mut many_hooks = good;
    let hook_count_at = 28; // Header::hook_count
    many_hooks[hook_count_at..hook_count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = attach_bytes(&many_hooks).err().expect("hook count");
    assert!(err.to_string().contains("hook count"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random files, some starting like a real segment, never make attach panic or read out of bounds.
    #[test]
    fn random_bytes_never_panic(len in prop_oneof![0usize..64, Just(SEGMENT_SIZE), (SEGMENT_SIZE - 8)..(SEGMENT_SIZE + 8)],
                                seed: u64, real_prefix in 0usize..4) {
        let mut bytes = vec![0u8; len];
        let mut state = seed;
        for b in bytes.iter_mut() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (state >> 56) as u8;
        }
        let prefix: Vec<u8> = [MAGIC.to_le_bytes().to_vec(), ABI_VERSION.to_le_bytes().to_vec(), 1u32.to_le_bytes().to_vec(),
            (SEGMENT_SIZE as u64).to_le_bytes().to_vec()].concat();
        let keep = [0, 8, 16, 24][real_prefix].min(len);
        bytes[..keep].copy_from_slice(&prefix[..keep]);
        if let Ok(map) = attach_bytes(&bytes) {
            // Whatever garbage is in the body, reading it through the API stays in bounds.
            let seg = map.segment();
            let _ = seg.header.hook_names();
            let _ = seg.control.snapshot();
            let _ = seg.hook_totals(usize::MAX);
            let mut cursor = shm_proto::ring::RingCursor::oldest(&seg.ring);
            cursor.drain(&seg.ring, true, |_| {});
        }
    }
}

#[test]
fn read_write_attach_refuses_other_users_segments_and_loose_modes() {
    let dir = tempfile::tempdir().unwrap();
    let id = own_identity();
    drop(create(dir.path(), &id));
    let path = dir.path().join(segment::file_name(Kind::Ucx, id.pid));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SegmentMap::attach(&path, Access::ReadWrite, AttachOptions::default()).err().expect("mode 0644");
    assert!(err.to_string().contains("mode 0644, expected 0600"), "{err}");
    assert!(SegmentMap::attach(&path, Access::ReadOnly, AttachOptions::default()).is_ok(), "reading is fine");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let nobody = 65534;
        std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).unwrap();
        let err = SegmentMap::attach(&path, Access::ReadWrite, AttachOptions::default()).err().expect("foreign");
        assert!(matches!(err, SegmentError::NotOwner { owner: 65534, you: 0, .. }), "{err}");
        assert!(err.to_string().contains("owned by uid 65534, not by you (uid 0)"), "{err}");
        let node_agent = AttachOptions { allow_foreign: true };
        assert!(SegmentMap::attach(&path, Access::ReadWrite, node_agent).is_ok(), "root on a node may, explicitly");
    } else {
        eprintln!("not root: the foreign-owner part of this test needs root to chown");
    }
}
