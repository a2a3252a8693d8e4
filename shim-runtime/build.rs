//! Compiles the shims' per-thread state block (c/thread_state.c): initial-exec TLS, which stable Rust cannot ask for.
fn main() {
    println!("cargo::rerun-if-changed=c/thread_state.c");
    cc::Build::new()
        .file("c/thread_state.c")
        .flag_if_supported("-std=c11")
        .warnings(true)
        .compile("faultline_thread_state");
}
