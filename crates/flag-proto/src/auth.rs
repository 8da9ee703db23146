//! The bearer token on the wire: the one client interceptor that sends it, and the one
//! reading of it that flagd compares against its tokens.

use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::metadata::AUTHORIZATION_KEY;

/// Adds `authorization: Bearer <token>` to every call, when there is a token. Cheap to
/// clone: the header value is built once, when the client is.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

/// A token that cannot be sent in a header (it must be visible ASCII).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the token cannot be sent in an authorization header (it must be visible ASCII)")]
#[non_exhaustive]
pub struct InvalidToken;

impl Bearer {
    /// Sends `token`, or nothing when `None`.
    pub fn new(token: Option<&str>) -> Result<Bearer, InvalidToken> {
        match token {
            Some(token) => {
                format!("Bearer {token}").parse().map(|value| Bearer(Some(value))).map_err(|_| InvalidToken)
            }
            None => Ok(Bearer(None)),
        }
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: say only whether there is one.
        f.debug_tuple("Bearer").field(&self.0.as_ref().map(|_| "…")).finish()
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION_KEY, value.clone());
        }
        Ok(request)
    }
}

/// The token a request offers in `authorization: Bearer <token>` (the scheme in any case);
/// `None` without one.
pub fn bearer_token(metadata: &MetadataMap) -> Option<&[u8]> {
    let value = metadata.get(AUTHORIZATION_KEY)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| &value[7..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interceptor_sends_what_the_server_reads() {
        let mut bearer = Bearer::new(Some("s3cret")).unwrap();
        let request = bearer.call(Request::new(())).unwrap();
        assert_eq!(bearer_token(request.metadata()), Some(&b"s3cret"[..]));
        let request = Bearer::new(None).unwrap().call(Request::new(())).unwrap();
        assert_eq!(bearer_token(request.metadata()), None);
        assert_eq!(Bearer::new(Some("bad\ntoken")).unwrap_err(), InvalidToken);
        assert!(!format!("{bearer:?}").contains("s3cret"));
    }
}
