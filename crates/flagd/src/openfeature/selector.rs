//! Which environment an OpenFeature call reads: flagd's selector — the `Flagd-Selector`
//! header (gRPC metadata `flagd-selector`), else a sync request's deprecated `selector`
//! field — names it; none means `production`, as for our own SDKs.
//!
//! A selector is the environment's name, or flagd's newer `flagSetId=NAME` spelling of it.

use flag_proto::environment_or_default;
use tonic::metadata::MetadataMap;

use crate::status::RequestError;
use crate::store::WriteError;

/// The header providers send their selector in.
pub(crate) const SELECTOR_HEADER: &str = "flagd-selector";

/// The environment a selector names, checked as the store checks names.
pub(crate) fn environment(selector: &str) -> Result<String, RequestError> {
    let selector = selector.trim();
    let name = selector.strip_prefix("flagSetId=").unwrap_or(selector);
    let environment = environment_or_default(name).to_owned();
    if !crate::store::is_environment_name(&environment) {
        return Err(WriteError::InvalidEnvironment { environment }.into());
    }
    Ok(environment)
}

/// The environment of a gRPC call: its header, else `field` (a request's own selector).
pub(crate) fn of_call(metadata: &MetadataMap, field: &str) -> Result<String, RequestError> {
    let header = metadata.get(SELECTOR_HEADER).and_then(|value| value.to_str().ok()).unwrap_or_default();
    environment(if header.is_empty() { field } else { header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_names_an_environment_and_none_means_production() {
        assert_eq!(environment("").unwrap(), "production");
        assert_eq!(environment("staging").unwrap(), "staging");
        assert_eq!(environment("flagSetId=staging").unwrap(), "staging");
        assert!(environment("no such/name").is_err());
        let mut metadata = MetadataMap::new();
        metadata.insert(SELECTOR_HEADER, "staging".parse().unwrap());
        assert_eq!(of_call(&metadata, "ignored").unwrap(), "staging");
        assert_eq!(of_call(&MetadataMap::new(), "dev").unwrap(), "dev");
    }
}
