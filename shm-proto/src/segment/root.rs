//! Paths inside another process's root (a container's, through `/proc/<pid>/root`), resolved as that process
//! would resolve them: a symlink inside the container (`/dev/shm -> /run/shm`, or `-> /` planted to reach the
//! host) is interpreted inside the container's root, never in ours. Files are then opened below the root with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`, so a component swapped for a symlink after resolution makes
//! the open fail instead of leading elsewhere.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How many symlinks one resolution may follow (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Resolves the absolute path `path` inside `root` (e.g. `/proc/123/root`), interpreting every symlink inside
/// that root. Returns the path relative to the root, free of symlinks and `..` at the time of the call.
pub fn resolve(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut pending: VecDeque<std::ffi::OsString> = components(path).collect();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(component) = pending.pop_front() {
        if component == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&component);
        let meta = fs::symlink_metadata(&candidate)?;
        if !meta.file_type().is_symlink() {
            resolved.push(component);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = fs::read_link(&candidate)?;
        if target.is_absolute() {
            resolved.clear();
        }
        for (at, part) in components(&target).enumerate() {
            pending.insert(at, part);
        }
    }
    Ok(resolved.iter().collect())
}

fn components(path: &Path) -> impl Iterator<Item = std::ffi::OsString> + '_ {
    path.as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .map(|part| std::ffi::OsStr::from_bytes(part).to_os_string())
}

/// Opens `rel` below `root` with `flags` (plus `O_CLOEXEC`, and `O_NOCTTY` unless `O_PATH`), refusing every symlink on the way.
pub fn open_below(root: &Path, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    let root = fs::File::open(root)?;
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let name = CString::new(rel.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain data; all-zero is valid and the fields we need are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    // openat2 refuses flags that do not apply to O_PATH descriptors.
    let extra = if flags & libc::O_PATH != 0 { libc::O_CLOEXEC } else { libc::O_CLOEXEC | libc::O_NOCTTY };
    how.flags = (flags | extra) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: openat2 with a valid directory descriptor, a NUL-terminated path and a fully initialised open_how
    // of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Removes the file `rel` below `root` (its directory opened as by [`open_below`]); never follows a symlink.
pub fn remove_below(root: &Path, rel: &Path) -> io::Result<()> {
    let dir = open_below(root, rel.parent().unwrap_or(Path::new("")), libc::O_PATH | libc::O_DIRECTORY)?;
    let name = rel.file_name().ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let name = CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid directory descriptor and a NUL-terminated single-component name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_resolved_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("run/shm")).unwrap();
        fs::create_dir_all(r.join("dev")).unwrap();
        symlink("/run/shm", r.join("dev/shm")).unwrap();
        assert_eq!(resolve(r, Path::new("/dev/shm")).unwrap(), PathBuf::from("run/shm"));
        // An absolute link to "/" stays in the root; `..` cannot climb out of it.
        fs::remove_file(r.join("dev/shm")).unwrap();
        symlink("/../../..", r.join("dev/shm")).unwrap();
        assert_eq!(resolve(r, Path::new("/dev/shm")).unwrap(), PathBuf::new());
        fs::remove_file(r.join("dev/shm")).unwrap();
        symlink("shm", r.join("dev/shm")).unwrap();
        assert_eq!(resolve(r, Path::new("/dev/shm")).unwrap_err().raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn opening_below_the_root_refuses_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("real")).unwrap();
        fs::write(r.join("real/file"), b"x").unwrap();
        symlink("real", r.join("link")).unwrap();
        assert!(open_below(r, Path::new("real/file"), libc::O_RDONLY).is_ok());
        assert_eq!(
            open_below(r, Path::new("link/file"), libc::O_RDONLY).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        remove_below(r, Path::new("real/file")).unwrap();
        assert!(!r.join("real/file").exists());
    }
}
