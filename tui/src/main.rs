//! `faultline`: attach to shimmed processes by pid and steer their faults.
fn main() {
    for found in shm_proto::segment::discover(false) {
        println!("{} {} {}", found.pid, found.kind.name(), found.path.display());
    }
}
