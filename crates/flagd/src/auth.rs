//! Bearer-token checks for the two services, compared in constant time.

use std::sync::Arc;

use flag_proto::bearer_token;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::status::RequestError;

/// The tokens a server accepts. Cloned into each service's interceptor.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    admin: Option<Arc<[u8]>>,
    sdk: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &self.admin.is_some())
            .field("sdk", &self.sdk.is_some())
            .finish()
    }
}

fn matches(expected: &Option<Arc<[u8]>>, offered: &[u8]) -> bool {
    // `ct_eq` on slices leaks only the length, which is not the secret.
    expected.as_ref().is_some_and(|token| bool::from(token.ct_eq(offered)))
}

impl Tokens {
    pub(crate) fn new(admin: Option<&str>, sdk: Option<&str>) -> Self {
        let token = |t: Option<&str>| t.filter(|t| !t.is_empty()).map(|t| Arc::from(t.as_bytes()));
        Tokens { admin: token(admin), sdk: token(sdk) }
    }

    /// Admin calls: the admin token, when one is configured.
    pub(crate) fn check_admin(&self, metadata: &MetadataMap) -> Result<(), RequestError> {
        if self.admin.is_none() {
            return Ok(());
        }
        match bearer_token(metadata) {
            Some(offered) if matches(&self.admin, offered) => Ok(()),
            Some(_) => Err(RequestError::Unauthenticated("the admin token is not valid")),
            None => {
                Err(RequestError::Unauthenticated("admin calls need `authorization: Bearer <admin token>`"))
            }
        }
    }

    /// Sync calls: the SDK token or the admin token, when an SDK token is configured.
    pub(crate) fn check_sdk(&self, metadata: &MetadataMap) -> Result<(), RequestError> {
        if self.sdk.is_none() {
            return Ok(());
        }
        match bearer_token(metadata) {
            Some(offered) if matches(&self.sdk, offered) || matches(&self.admin, offered) => Ok(()),
            Some(_) => Err(RequestError::Unauthenticated("the SDK token is not valid")),
            None => Err(RequestError::Unauthenticated("sync calls need `authorization: Bearer <sdk token>`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert(flag_proto::AUTHORIZATION_KEY, value.parse().unwrap());
        metadata
    }

    #[test]
    fn tokens_are_checked_per_service() {
        let tokens = Tokens::new(Some("admin-secret"), Some("sdk-secret"));
        assert!(tokens.check_admin(&with_header("Bearer admin-secret")).is_ok());
        assert!(tokens.check_admin(&with_header("bearer admin-secret")).is_ok());
        assert!(tokens.check_admin(&with_header("Bearer sdk-secret")).is_err());
        assert!(tokens.check_admin(&MetadataMap::new()).is_err());
        assert!(tokens.check_sdk(&with_header("Bearer sdk-secret")).is_ok());
        assert!(tokens.check_sdk(&with_header("Bearer admin-secret")).is_ok());
        assert!(tokens.check_sdk(&with_header("Bearer admin-secre")).is_err());
        assert!(tokens.check_sdk(&with_header("Basic sdk-secret")).is_err());
    }

    #[test]
    fn without_tokens_everything_is_open() {
        let open = Tokens::new(None, Some(""));
        assert!(open.check_admin(&MetadataMap::new()).is_ok());
        assert!(open.check_sdk(&MetadataMap::new()).is_ok());
    }
}
