//! The flag server.

#[allow(dead_code)]
mod store;
