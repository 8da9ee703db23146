//! Generates the flags.v1 and flagd.* code from proto/ with protox, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "flags/v1/model.proto",
        "flags/v1/admin.proto",
        "flags/v1/rollout.proto",
        "flags/v1/sync.proto",
        // OpenFeature flagd's contracts, served beside ours for its unmodified providers.
        "flagd/evaluation/v1/evaluation.proto",
        "flagd/evaluation/v2/evaluation.proto",
        "flagd/sync/v1/sync.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;

    // The Sync server again, with a codec that sends pre-encoded frames: each change is
    // encoded once and the same bytes go to every stream.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?).join("shared_frames");
    std::fs::create_dir_all(&out_dir)?;
    let watch = tonic_build::manual::Method::builder()
        .name("watch")
        .route_name("Watch")
        .input_type("crate::v1::WatchRequest")
        .output_type("crate::frame::WatchFrame")
        .codec_path("crate::frame::FrameCodec")
        .client_streaming()
        .server_streaming()
        .build();
    let sync = tonic_build::manual::Service::builder().name("Sync").package("flags.v1").method(watch).build();
    // OpenFeature's sync service likewise: `SyncFlags` sends the whole environment after each
    // change, encoded once per revision for every provider's stream.
    let prost = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::flagd::sync::v1::{input}"))
            .output_type(format!("crate::flagd::sync::v1::{output}"))
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let sync_flags = tonic_build::manual::Method::builder()
        .name("sync_flags")
        .route_name("SyncFlags")
        .input_type("crate::flagd::sync::v1::SyncFlagsRequest")
        .output_type("crate::pre_encoded::PreEncoded")
        .codec_path("crate::pre_encoded::PreEncodedCodec")
        .server_streaming()
        .build();
    let flag_sync = tonic_build::manual::Service::builder()
        .name("FlagSyncService")
        .package("flagd.sync.v1")
        .method(sync_flags)
        .method(prost("fetch_all_flags", "FetchAllFlags", "FetchAllFlagsRequest", "FetchAllFlagsResponse"))
        .method(prost("get_metadata", "GetMetadata", "GetMetadataRequest", "GetMetadataResponse"))
        .build();
    tonic_build::manual::Builder::new().build_client(false).out_dir(&out_dir).compile(&[sync, flag_sync]);
    Ok(())
}
