//! Compiles proto/roleplay/v1/*.proto with protox (pure Rust, so no system
//! `protoc` is needed) and writes the descriptor set that server reflection
//! serves.

use std::{env, fs, io, path::PathBuf};

use prost::Message;

fn main() -> io::Result<()> {
    let proto_dir = PathBuf::from("proto");
    let mut files: Vec<PathBuf> = fs::read_dir(proto_dir.join("roleplay/v1"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();

    // tonic-prost-build prints no rerun-if-changed lines when given a
    // descriptor set, so edits to .proto files would go unnoticed without these.
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&proto_dir]).map_err(io::Error::other)?;
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| io::Error::other("OUT_DIR unset"))?);
    fs::write(out_dir.join("roleplay_descriptor.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        // prost's codec with a smaller encode buffer per stream (src/api/codec.rs).
        .codec_path("crate::api::codec::LeanCodec")
        // The derived Debug would print the API key; src/api/settings.rs has a
        // redacting implementation.
        .skip_debug([
            "roleplay.v1.SetProviderApiKeyRequest",
            "roleplay.v1.FallbackProviderInput",
            "roleplay.v1.UpdateSettingsRequest",
        ])
        .compile_fds(descriptors)
}
