//! Who is calling: a request's bearer token made the principal it belongs to, and the
//! server's principals — from `--admin-token` / `--sdk-token` and the tokens file, which
//! SIGHUP reloads.
//!
//! A token is never compared as it is: its SHA-256 is compared with every principal's, each
//! comparison in constant time and none cut short by a match, so neither the secret nor which
//! principal holds it shows in the time an answer takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flag_proto::bearer_token;
use ring::digest::{SHA256, digest};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio::sync::watch;
use tonic::Request;
use tonic::metadata::MetadataMap;

use crate::principal::{Environments, Principal, Role};
use crate::status::RequestError;
use crate::tokens_file::{self, Reserved, TokensError};

/// The two gRPC services, which need a token each on its own terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    Admin,
    Sync,
}

/// Who made a request: put in its extensions by the service's interceptor.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// A service that needs no token: anyone, known only by what the client says.
    Anyone,
    /// The principal whose token the request carried (as it was when the request came).
    Principal(Arc<Principal>),
}

impl Caller {
    /// The caller the interceptor found; `None` for a request that did not pass one.
    pub(crate) fn of<T>(request: &Request<T>) -> Option<&Caller> {
        request.extensions().get::<Caller>()
    }

    /// The principal, when the service checks tokens.
    pub(crate) fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anyone => None,
            Caller::Principal(principal) => Some(principal),
        }
    }
}

/// The SHA-256 of a secret: all the server keeps of it.
pub(crate) fn secret_digest(secret: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, secret).as_ref());
    out
}

/// The principals accepted at one moment.
#[derive(Debug, Default)]
pub(crate) struct Principals(Vec<Arc<Principal>>);

impl Principals {
    /// The principal whose secret has `digest`. Every principal's digest is compared, each
    /// in constant time, and the match is selected without a branch: the time taken does not
    /// depend on which principal (if any) matched. Names and digests are unique, so at most
    /// one does.
    fn find(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        let mut matched = u64::MAX;
        for (index, principal) in self.0.iter().enumerate() {
            let same = principal.digest[..].ct_eq(&digest[..]);
            matched.conditional_assign(&(index as u64), same);
        }
        self.0.get(usize::try_from(matched).ok()?).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The server's principals and which services need a token.
#[derive(Debug)]
pub(crate) struct Access {
    /// Whether Admin calls need a token: with neither an admin token nor a tokens file they
    /// are open (the README's quick start). Fixed at start.
    admin_open: bool,
    /// Whether Sync calls need a token: with neither an SDK token nor a tokens file they are
    /// open. Fixed at start.
    sync_open: bool,
    /// The principals of `--admin-token` and `--sdk-token`, kept across reloads.
    fixed: Vec<Principal>,
    /// The tokens file, read at start and on every reload.
    file: Option<PathBuf>,
    /// The principals in force. A `watch` rather than an `ArcSwap`: interceptors read the
    /// newest set (a short read lock and an `Arc` clone), and each open stream is woken by a
    /// reload to check that its principal still may follow its environment.
    current: watch::Sender<Arc<Principals>>,
}

impl Access {
    /// The principals of the two single-token options (empty ones are none) and of the
    /// tokens file, if any; a file that cannot be used is refused.
    pub(crate) fn new(
        admin_token: Option<&str>,
        sdk_token: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Access, TokensError> {
        fn token(token: Option<&str>) -> Option<&[u8]> {
            token.filter(|token| !token.is_empty()).map(str::as_bytes)
        }
        let (admin_token, sdk_token) = (token(admin_token), token(sdk_token));
        let fixed: Vec<Principal> = [(admin_token, "admin", Role::Admin), (sdk_token, "sdk", Role::Sdk)]
            .into_iter()
            .filter_map(|(token, name, role)| {
                Some(Principal {
                    name: name.into(),
                    digest: secret_digest(token?),
                    role,
                    environments: Environments::All,
                })
            })
            .collect();
        let access = Access {
            admin_open: admin_token.is_none() && file.is_none(),
            sync_open: sdk_token.is_none() && file.is_none(),
            fixed,
            file: file.map(Path::to_owned),
            current: watch::Sender::new(Arc::default()),
        };
        access.current.send_replace(Arc::new(access.read()?));
        Ok(access)
    }

    /// The fixed principals and the file's, read now.
    fn read(&self) -> Result<Principals, TokensError> {
        let mut principals: Vec<Arc<Principal>> = self.fixed.iter().cloned().map(Arc::new).collect();
        if let Some(file) = &self.file {
            let reserved: Vec<Reserved<'_>> = self
                .fixed
                .iter()
                .map(|principal| Reserved {
                    principal,
                    option: if principal.role == Role::Admin { "--admin-token" } else { "--sdk-token" },
                })
                .collect();
            principals.extend(tokens_file::load(file, &reserved)?.into_iter().map(Arc::new));
        }
        Ok(Principals(principals))
    }

    /// The tokens file, if any.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Reads the tokens file again and puts its principals in force: new requests see them
    /// at once, and open streams whose principal is gone or may no longer follow their
    /// environment end. A file that cannot be used changes nothing. Blocking (reads a file).
    pub(crate) fn reload(&self) -> Result<usize, TokensError> {
        let principals = self.read()?;
        let count = principals.len();
        self.current.send_replace(Arc::new(principals));
        Ok(count)
    }

    /// Who sent a request to `service`, from its `authorization` header.
    pub(crate) fn authenticate(
        &self,
        metadata: &MetadataMap,
        service: Service,
    ) -> Result<Caller, RequestError> {
        self.authenticate_secret(bearer_token(metadata), service)
    }

    /// Who offers `offered` (a bearer token, or none) to `service`: the interceptors' check,
    /// and the console's sign-in.
    pub(crate) fn authenticate_secret(
        &self,
        offered: Option<&[u8]>,
        service: Service,
    ) -> Result<Caller, RequestError> {
        if self.is_open(service) {
            return Ok(Caller::Anyone);
        }
        let Some(offered) = offered else {
            return Err(RequestError::Unauthenticated(
                match service {
                    Service::Admin => "admin calls need `authorization: Bearer <token>`",
                    Service::Sync => "sync calls need `authorization: Bearer <sdk token>`",
                }
                .into(),
            ));
        };
        let Some(principal) = self.principal_with(&secret_digest(offered)) else {
            return Err(RequestError::Unauthenticated("the token is not valid: no principal has it".into()));
        };
        if service == Service::Admin && principal.role == Role::Sdk {
            // Not a credential of this service at all, as a wrong token would be.
            return Err(RequestError::Unauthenticated(format!(
                "principal {:?} is an SDK token: it may only follow changes (Sync), not call Admin",
                principal.name
            )));
        }
        Ok(Caller::Principal(principal))
    }

    /// Whether `service` takes calls without a token.
    pub(crate) fn is_open(&self, service: Service) -> bool {
        match service {
            Service::Admin => self.admin_open,
            Service::Sync => self.sync_open,
        }
    }

    /// The principal in force now whose secret has `digest`: a console session asks on every
    /// request, so a token removed by a reload ends its sessions too.
    pub(crate) fn principal_with(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        self.current.borrow().find(digest)
    }

    /// A stream's access to `environment`, checked against the principals in force now (a
    /// reload may have come since the stream's request), then kept watch over.
    pub(crate) fn follow(&self, caller: &Caller, environment: &str) -> Result<StreamAccess, RequestError> {
        let Caller::Principal(principal) = caller else {
            return Ok(StreamAccess { watched: None });
        };
        let mut principals = self.current.subscribe();
        let current = Arc::clone(&principals.borrow_and_update());
        let watched = Watched {
            digest: principal.digest,
            name: principal.name.clone(),
            environment: environment.to_owned(),
            principals,
        };
        watched.check(&current)?;
        Ok(StreamAccess { watched: Some(watched) })
    }
}

/// An open stream's access, rechecked on every reload.
#[derive(Debug)]
pub(crate) struct StreamAccess {
    /// `None` on a service without tokens: nothing to take away.
    watched: Option<Watched>,
}

#[derive(Debug)]
struct Watched {
    /// The stream's token, as the server keeps it: a principal renamed or changed keeps the
    /// stream as long as the same secret may still follow the environment.
    digest: [u8; 32],
    name: String,
    environment: String,
    principals: watch::Receiver<Arc<Principals>>,
}

impl Watched {
    fn check(&self, principals: &Principals) -> Result<(), RequestError> {
        match principals.find(&self.digest) {
            None => Err(RequestError::Unauthenticated(format!(
                "principal {:?} is no longer accepted: the tokens file was reloaded without its token",
                self.name
            ))),
            Some(principal) => Ok(principal.may_follow(&self.environment)?),
        }
    }
}

impl StreamAccess {
    /// Completes when a reload takes the stream's access away, with the refusal to end it
    /// with; never, on a service without tokens.
    pub(crate) async fn revoked(&mut self) -> RequestError {
        let Some(watched) = &mut self.watched else {
            return std::future::pending().await;
        };
        loop {
            if watched.principals.changed().await.is_err() {
                // The server is going away; the stream ends on its own.
                return std::future::pending().await;
            }
            let current = Arc::clone(&watched.principals.borrow_and_update());
            if let Err(refused) = watched.check(&current) {
                return refused;
            }
        }
    }
}

#[cfg(test)]
mod tests;
