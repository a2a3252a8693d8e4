//! Which PCI address GPU `N` has: read from the NVIDIA driver's `/proc/driver/nvidia/gpus/<pci>/information`
//! (`Device Minor: N`, `Bus Location: 0000:3b:00.0`), with the driver directory as a parameter so tests run
//! against a fixture tree. Also parses and normalises PCI addresses given on the command line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::NodeError;

/// Where the NVIDIA driver publishes its GPUs.
pub const DEFAULT_DRIVER_DIR: &str = "/proc/driver/nvidia";

/// A PCI address: domain, bus, device and (optionally) function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciAddress {
    /// PCI domain (segment); nvidia-smi prints 8 hex digits, the kernel 4.
    pub domain: u32,
    /// Bus.
    pub bus: u8,
    /// Device.
    pub device: u8,
    /// Function, if given.
    pub function: Option<u8>,
}

impl PciAddress {
    /// Parses `DDDD:BB:DD.F`, `DDDDDDDD:BB:DD.F` (nvidia-smi), `BB:DD.F` (domain 0), with or without `.F`.
    pub fn parse(text: &str) -> Result<Self, NodeError> {
        let bad = || NodeError::BadPci(text.to_string());
        let (rest, function) = match text.split_once('.') {
            Some((rest, function)) => (rest, Some(u8::from_str_radix(function, 16).map_err(|_| bad())?)),
            None => (text, None),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [domain, bus, device] => (*domain, *bus, *device),
            [bus, device] => ("0", *bus, *device),
            _ => return Err(bad()),
        };
        let hex = |s: &str, max_len: usize| {
            if s.is_empty() || s.len() > max_len || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                Err(bad())
            } else {
                u32::from_str_radix(s, 16).map_err(|_| bad())
            }
        };
        let address = PciAddress {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).map_err(|_| bad())?,
            device: u8::try_from(hex(device, 2)?).map_err(|_| bad())?,
            function,
        };
        if address.device > 0x1f || address.function.is_some_and(|f| f > 7) || address.domain > 0xffff {
            return Err(bad());
        }
        Ok(address)
    }

    /// The form the driver prints in XID lines: `0000:3b:00` (4-digit domain, no function).
    pub fn xid_form(&self) -> String {
        format!("{:04x}:{:02x}:{:02x}", self.domain, self.bus, self.device)
    }
}

/// `0000:3b:00.0` (the function is 0 when it was not given).
impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.device, self.function.unwrap_or(0))
    }
}

/// One GPU as the driver describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    /// `Device Minor` (the N of /dev/nvidiaN, what `--gpu` means).
    pub minor: u32,
    /// `Bus Location`, normalised.
    pub pci: String,
    /// `Model`, if present.
    pub model: Option<String>,
    /// `GPU UUID`, if present.
    pub uuid: Option<String>,
    /// The information file it came from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// Every GPU under `driver_dir` (normally [`DEFAULT_DRIVER_DIR`]), by minor number.
pub fn list(driver_dir: &Path) -> Result<Vec<Gpu>, NodeError> {
    let gpus_dir = driver_dir.join("gpus");
    let entries = std::fs::read_dir(&gpus_dir).map_err(|cause| NodeError::NoDriver { dir: gpus_dir.clone(), cause })?;
    let mut gpus = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path().join("information");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        gpus.push(parse_information(&text, &entry.file_name().to_string_lossy(), &path)?);
    }
    gpus.sort_by_key(|gpu| gpu.minor);
    Ok(gpus)
}

/// GPU `minor`'s entry.
pub fn resolve(driver_dir: &Path, minor: u32) -> Result<Gpu, NodeError> {
    let gpus = list(driver_dir)?;
    let known: Vec<u32> = gpus.iter().map(|gpu| gpu.minor).collect();
    gpus.into_iter().find(|gpu| gpu.minor == minor).ok_or_else(|| NodeError::NoSuchGpu {
        gpu: minor,
        known,
        dir: driver_dir.join("gpus"),
    })
}

/// Parses one `information` file; `dir_name` (the PCI address the driver names the directory after) is used when
/// the file has no `Bus Location`.
pub fn parse_information(text: &str, dir_name: &str, path: &Path) -> Result<Gpu, NodeError> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let bad = |what: String| NodeError::BadInformation { path: path.to_path_buf(), what };
    let minor = field("Device Minor").ok_or_else(|| bad("no `Device Minor` line".into()))?;
    let minor = minor.parse().map_err(|_| bad(format!("`Device Minor: {minor}` is not a number")))?;
    let location = field("Bus Location").unwrap_or_else(|| dir_name.to_string());
    let pci =
        PciAddress::parse(&location).map_err(|_| bad(format!("bus location `{location}` is not a PCI address")))?;
    Ok(Gpu { minor, pci: pci.to_string(), model: field("Model"), uuid: field("GPU UUID"), path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_parse_in_every_common_spelling() {
        let kernel = PciAddress::parse("0000:3b:00.0").unwrap();
        assert_eq!(kernel.to_string(), "0000:3b:00.0");
        assert_eq!(kernel.xid_form(), "0000:3b:00");
        assert_eq!(PciAddress::parse("00000000:3B:00.0").unwrap(), kernel);
        assert_eq!(PciAddress::parse("3b:00.0").unwrap(), kernel);
        assert_eq!(PciAddress::parse("0000:3b:00").unwrap().to_string(), "0000:3b:00.0");
        assert_eq!(PciAddress::parse("0001:00:00.0").unwrap().xid_form(), "0001:00:00");
        for bad in ["", "3b", "0000:3b:00.9", "zz:00.0", "0000:3b:20.0", "0000:3b:00:00.0", "0000:3b:00.0, x"] {
            assert!(PciAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
