//! Durable flag storage.
