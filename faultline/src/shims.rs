//! Where the shim libraries that came with this `faultline` are (`faultline shim-path ucx|cuda`, the demo).
//!
//! Two layouts ship the binary with its shims:
//!
//! - side by side: `target/release/` after `cargo build --release --workspace`, or any directory holding all three;
//! - the Python wheel (`scripts/wheel.sh`): pip installs the binary into the environment's scripts directory
//!   (`<prefix>/bin/faultline`) and the shims into the `faultline` package (`faultline/shims/`), which lives under
//!   `<prefix>/lib/python3.X/site-packages` (`lib64` for some platlibs, `dist-packages` on Debian's system Python),
//!   or beside `bin/` with `pip install --target DIR`.
//!
//! The binary knows its own path (`/proc/self/exe`, symlinks resolved), so each layout is a fixed set of places
//! relative to it; nothing is taken from `PATH` or the environment. Where one prefix holds the package for several
//! Pythons, the one installed together with this version of faultline (its `faultline-<version>.dist-info`) wins.

use std::path::{Path, PathBuf};

use shm_proto::Kind;

use crate::cluster::shim_rollout::library_file;

/// The directory of the `faultline` Python package that holds the shims, relative to the package's parent.
pub const PACKAGE_SHIM_DIR: &str = "faultline/shims";

/// The shim library of `kind` that came with the running binary.
pub fn shim_path(kind: Kind) -> Result<PathBuf, ShimNotFound> {
    let exe = std::env::current_exe().map_err(|e| ShimNotFound { kind, looked_in: Vec::new(), why: e.to_string() })?;
    find_for_executable(&exe, kind)
}

/// The shim library of `kind` that came with the executable at `exe` (see the module documentation).
pub fn find_for_executable(exe: &Path, kind: Kind) -> Result<PathBuf, ShimNotFound> {
    let file = library_file(kind);
    let places = candidate_dirs(exe);
    for dir in &places {
        let path = dir.join(&file);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(ShimNotFound { kind, looked_in: places, why: String::new() })
}

/// Where the shims may be for the executable `exe`, in order of preference.
pub fn candidate_dirs(exe: &Path) -> Vec<PathBuf> {
    let Some(bin) = exe.parent() else { return Vec::new() };
    let mut dirs = vec![bin.to_path_buf()];
    let Some(prefix) = bin.parent() else { return dirs };
    // `pip install --target DIR`: DIR/bin/faultline and DIR/faultline/.
    dirs.push(prefix.join(PACKAGE_SHIM_DIR));
    // `<prefix>/lib*/python3*/{site,dist}-packages/faultline/shims`, this version's install first.
    let mut packages = Vec::new();
    for lib in ["lib", "lib64"] {
        for python in sorted_entries(&prefix.join(lib)).into_iter().filter(|p| has_name_prefix(p, "python3")) {
            for packages_dir in ["site-packages", "dist-packages"] {
                let dir = python.join(packages_dir);
                if dir.join(PACKAGE_SHIM_DIR).is_dir() {
                    packages.push(dir);
                }
            }
        }
    }
    let this_version = format!("faultline-{}.dist-info", env!("CARGO_PKG_VERSION"));
    // A stable sort: this version's installs first, each group in directory order.
    packages.sort_by_key(|dir| !dir.join(&this_version).is_dir());
    dirs.extend(packages.into_iter().map(|dir| dir.join(PACKAGE_SHIM_DIR)));
    dirs
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

fn has_name_prefix(path: &Path, prefix: &str) -> bool {
    path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with(prefix))
}

/// No shim of the kind asked for where this binary's shims would be.
#[derive(Debug)]
pub struct ShimNotFound {
    /// The kind asked for.
    pub kind: Kind,
    /// The directories searched.
    pub looked_in: Vec<PathBuf>,
    /// Why the search could not even start (the executable's path is unknown), if so.
    pub why: String,
}

impl std::fmt::Display for ShimNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = library_file(self.kind);
        if !self.why.is_empty() {
            return write!(f, "cannot tell where this faultline is, so where its {file} is: {}", self.why);
        }
        let looked_in: Vec<String> = self.looked_in.iter().map(|dir| dir.display().to_string()).collect();
        write!(
            f,
            "no {file} beside this faultline or in its Python package (looked in {}); build it with `cargo build \
             --release --workspace`, or install the wheel (scripts/wheel.sh)",
            looked_in.join(", ")
        )
    }
}

impl std::error::Error for ShimNotFound {}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn a_shim_beside_the_binary_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("release/faultline");
        touch(&exe);
        touch(&dir.path().join("release/libfaultline_ucx.so"));
        touch(&dir.path().join("lib/python3.11/site-packages/faultline/shims/libfaultline_ucx.so"));
        assert_eq!(find_for_executable(&exe, Kind::Ucx).unwrap(), dir.path().join("release/libfaultline_ucx.so"));
        let error = find_for_executable(&exe, Kind::Cuda).unwrap_err();
        assert!(error.to_string().contains("no libfaultline_cuda.so"), "{error}");
    }

    #[test]
    fn the_wheel_layouts_are_found_from_the_scripts_directory() {
        for package_dir in [
            "lib/python3.11/site-packages",
            "lib64/python3.9/site-packages",
            "lib/python3/dist-packages",
            "lib/python3.12/dist-packages",
            "",
        ] {
            let prefix = tempfile::tempdir().unwrap();
            let exe = prefix.path().join("bin/faultline");
            touch(&exe);
            let shim = prefix.path().join(package_dir).join("faultline/shims/libfaultline_cuda.so");
            touch(&shim);
            assert_eq!(find_for_executable(&exe, Kind::Cuda).unwrap(), shim, "{package_dir}");
            assert!(find_for_executable(&exe, Kind::Ucx).is_err());
        }
    }

    #[test]
    fn with_several_pythons_in_one_prefix_this_versions_install_wins() {
        let prefix = tempfile::tempdir().unwrap();
        let exe = prefix.path().join("bin/faultline");
        touch(&exe);
        let older = prefix.path().join("lib/python3.10/site-packages");
        let ours = prefix.path().join("lib/python3.12/site-packages");
        for packages in [&older, &ours] {
            touch(&packages.join("faultline/shims/libfaultline_ucx.so"));
        }
        std::fs::create_dir_all(older.join("faultline-0.0.1.dist-info")).unwrap();
        std::fs::create_dir_all(ours.join(format!("faultline-{}.dist-info", env!("CARGO_PKG_VERSION")))).unwrap();
        assert_eq!(find_for_executable(&exe, Kind::Ucx).unwrap(), ours.join("faultline/shims/libfaultline_ucx.so"));
    }
}
