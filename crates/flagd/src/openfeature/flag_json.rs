//! TEMP-PLACEHOLDER until openfeature-json lands.
use crate::openfeature::current::Current;
use std::sync::Arc;
pub(crate) fn flagd_json(current: &Current) -> Arc<str> {
    Arc::from(format!("{{\"flags\":{{}},\"metadata\":{{\"revision\":{}}}}}", current.revision))
}
