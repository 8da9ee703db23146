//! flagctl.
fn main() {}
