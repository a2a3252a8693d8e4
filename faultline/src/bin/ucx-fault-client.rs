//! `ucx-fault-client`: the `faultline` program under the seed UCX injector's client name, built beside it so that
//! scripts written for the seed's release run unchanged (`scripts/seed-release.sh` packs it as the seed did). It is
//! `src/main.rs` itself, compiled a second time; under this name it speaks as the seed's client (see `cli`).

#[path = "../main.rs"]
mod program;

fn main() -> std::process::ExitCode {
    program::main()
}
