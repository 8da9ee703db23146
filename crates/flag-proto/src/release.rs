//! What a release of the binaries is, as `--version` prints it.

/// The store format flagd of this release reads and writes. Both binaries print it with
/// their version, so an operator can tell which releases share a data file; flagd refuses a
/// store written in a newer format than this. It lives in the crate both binaries link
/// (flagctl does not link flagd); flagd's store takes its schema version from here.
pub const STORE_FORMAT: u64 = 2;

/// `--version`'s text for a binary of this release: `0.1.0 (store format 2, protocol
/// flags.v1)`.
pub fn version_text(package_version: &str) -> &'static str {
    // Leaked once per process: clap keeps the version for the life of the program.
    Box::leak(format!("{package_version} (store format {STORE_FORMAT}, protocol flags.v1)").into_boxed_str())
}
