//! A sysfs tree for the kernel-log signal tests, built in a temporary directory (removed when dropped): PCI
//! functions with their driver links, RDMA devices and network interfaces as `/sys/class/infiniband` and
//! `/sys/class/net` show them, and GPUs' PCI vendor:device IDs.
#![allow(dead_code)] // each test file uses a different subset

use std::os::unix::fs::symlink;
use std::path::Path;

/// A sysfs tree with an mlx5 port (`mlx5_0` / `eth2` at 0000:65:00.0), an EFA device (`rdmap0s6` at 0000:00:06.0),
/// a virtual interface (`veth9`, no PCI device), and two GPUs' PCI IDs.
pub fn fake_sysfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    let mkdir = |path: &Path| std::fs::create_dir_all(path).unwrap();
    for driver in ["mlx5_core", "efa"] {
        mkdir(&root.join("bus/pci/drivers").join(driver));
    }
    let device = |bus: &str, pci: &str, driver: &str, ib: &str, net: Option<&str>| {
        let dir = root.join("devices").join(bus).join(pci);
        mkdir(&dir.join("infiniband").join(ib));
        symlink("../../../".to_string() + pci, dir.join("infiniband").join(ib).join("device")).unwrap();
        symlink(root.join("bus/pci/drivers").join(driver), dir.join("driver")).unwrap();
        mkdir(&root.join("class/infiniband"));
        symlink(dir.join("infiniband").join(ib), root.join("class/infiniband").join(ib)).unwrap();
        if let Some(net) = net {
            mkdir(&dir.join("net").join(net));
            symlink("../../../".to_string() + pci, dir.join("net").join(net).join("device")).unwrap();
            mkdir(&root.join("class/net"));
            symlink(dir.join("net").join(net), root.join("class/net").join(net)).unwrap();
        }
    };
    device("pci0000:64", "0000:65:00.0", "mlx5_core", "mlx5_0", Some("eth2"));
    device("pci0000:00", "0000:00:06.0", "efa", "rdmap0s6", None);
    mkdir(&root.join("devices/virtual/net/veth9"));
    symlink(root.join("devices/virtual/net/veth9"), root.join("class/net/veth9")).unwrap();
    for (pci, id) in [("0000:3b:00.0", "0x2330"), ("0000:1a:00.0", "0x2330")] {
        let dir = root.join("bus/pci/devices").join(pci);
        mkdir(&dir);
        std::fs::write(dir.join("vendor"), "0x10de\n").unwrap();
        std::fs::write(dir.join("device"), format!("{id}\n")).unwrap();
    }
    dir
}
