//! Compiles `logs.proto` with `protox`, a pure-Rust protobuf compiler, so the
//! build needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=logs.proto");
    let descriptors = protox::compile(["logs.proto"], ["."])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
