//! Console sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie, and per session
//! a CSRF token every state-changing request must carry.
//!
//! A session keeps the *digest* of the token it signed in with, not the principal: each
//! request finds the principal in force now, so a token removed or narrowed by a reload of
//! the tokens file takes effect on open consoles at their next click.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::auth::{Access, Caller};
use crate::principal::{Principal, Role};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "flagd_session";

/// How long a session lasts from sign-in, however busy: a console left open on a shared
/// screen does not stay signed in for days.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Most sessions held; signing in beyond it ends the oldest. Bounds memory whatever a
/// client does with the sign-in form.
const MAX_SESSIONS: usize = 10_000;

/// Whom a session signed in as.
#[derive(Clone, Debug)]
pub(crate) enum Who {
    /// A principal, by the digest of its token.
    Token([u8; 32]),
    /// On a server without tokens: whoever they said they are, recorded as the actor.
    Anyone(String),
}

#[derive(Clone, Debug)]
struct Session {
    who: Who,
    csrf: String,
    started: Instant,
}

/// The signed-in sessions of one server. A plain mutex: taken once per console request,
/// never by the gRPC services.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

/// A request's signed-in caller, resolved against the principals in force now.
#[derive(Clone, Debug)]
pub(crate) struct SignedIn {
    /// Put on the Admin requests made for it, as the gRPC interceptor does.
    pub(crate) caller: Caller,
    /// The actor its writes are recorded under.
    pub(crate) name: String,
    /// The token every form and script request of this session carries.
    pub(crate) csrf: String,
    /// The cookie's value, for signing out.
    pub(crate) id: String,
}

impl SignedIn {
    /// The principal, when the server checks tokens.
    pub(crate) fn principal(&self) -> Option<&Principal> {
        self.caller.principal()
    }

    /// The principal's role; `None` on a server without tokens, where anyone may do anything.
    pub(crate) fn role(&self) -> Option<Role> {
        self.principal().map(|principal| principal.role)
    }

    /// Whether the page should offer writes to `environment`: the server checks every write
    /// again, this only keeps buttons that would be refused off the page.
    pub(crate) fn may_write(&self, environment: &str) -> bool {
        self.principal().is_none_or(|principal| principal.may_write(environment))
    }

    /// Whether it may read `environment`.
    pub(crate) fn may_read(&self, environment: &str) -> bool {
        self.principal().is_none_or(|principal| principal.may_read(environment))
    }

    /// An Admin request made for this caller, as the gRPC interceptor would pass it on.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(self.caller.clone());
        request
    }

    /// Who and why, for a write's history entry: the principal is the actor whatever is
    /// said here (see `write_client::Author`); on a server without tokens, the name given.
    pub(crate) fn change(&self, reason: &str) -> Option<flag_proto::v1::Change> {
        Some(flag_proto::v1::Change { actor: self.name.clone(), reason: reason.trim().to_owned() })
    }

    /// Whether `offered` is this session's CSRF token, compared in constant time.
    pub(crate) fn csrf_matches(&self, offered: &str) -> bool {
        !offered.is_empty() && bool::from(offered.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// 32 random bytes as hex: a session id or a CSRF token.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session for `who`, returning its id; `None` if the system's random source
    /// failed (then nobody can sign in, which is the safe failure).
    pub(crate) fn start(&self, who: Who) -> Option<String> {
        let (id, csrf) = (random_token()?, random_token()?);
        let mut sessions = self.lock();
        sessions.retain(|_, session| session.started.elapsed() < LIFETIME);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions.iter().min_by_key(|(_, session)| session.started).map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Session { who, csrf, started: Instant::now() });
        Some(id)
    }

    /// Ends a session (signing out).
    pub(crate) fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The caller of session `id`, if it is current and its principal still holds a token.
    pub(crate) fn resolve(&self, id: &str, access: &Access) -> Option<SignedIn> {
        let session = {
            let mut sessions = self.lock();
            match sessions.get(id) {
                Some(session) if session.started.elapsed() < LIFETIME => session.clone(),
                Some(_) => {
                    sessions.remove(id);
                    return None;
                }
                None => return None,
            }
        };
        let (caller, name) = match &session.who {
            Who::Token(digest) => {
                let principal: Arc<Principal> = access.principal_with(digest)?;
                let name = principal.name.clone();
                (Caller::Principal(principal), name)
            }
            Who::Anyone(name) => (Caller::Anyone, name.clone()),
        };
        Some(SignedIn { caller, name, csrf: session.csrf, id: id.to_owned() })
    }
}

/// The `Set-Cookie` value of a new session: `Secure` when the console is served over TLS.
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}", LIFETIME.as_secs())
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// The session id in a `Cookie` header, if any.
pub(crate) fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').map(str::trim).find_map(|pair| pair.strip_prefix(COOKIE)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access_with_admin_token() -> Access {
        Access::new(Some("s3cret"), None, None).unwrap()
    }

    #[test]
    fn a_session_resolves_to_the_principal_of_its_token_and_ends_when_signed_out() {
        let access = access_with_admin_token();
        let sessions = Sessions::default();
        let id = sessions.start(Who::Token(crate::auth::secret_digest(b"s3cret"))).unwrap();
        let signed = sessions.resolve(&id, &access).unwrap();
        assert_eq!(signed.name, "admin");
        assert_eq!(signed.role(), Some(Role::Admin));
        assert!(signed.csrf_matches(&signed.csrf.clone()));
        assert!(!signed.csrf_matches(""));
        assert!(!signed.csrf_matches("0000"));
        sessions.end(&id);
        assert!(sessions.resolve(&id, &access).is_none());
    }

    #[test]
    fn a_session_whose_token_is_no_longer_held_is_refused() {
        let access = access_with_admin_token();
        let sessions = Sessions::default();
        let id = sessions.start(Who::Token(crate::auth::secret_digest(b"gone"))).unwrap();
        assert!(sessions.resolve(&id, &access).is_none());
        assert!(sessions.resolve("not-a-session", &access).is_none());
    }

    #[test]
    fn ids_and_csrf_tokens_differ_per_session() {
        let access = Access::new(None, None, None).unwrap();
        let sessions = Sessions::default();
        let first = sessions.start(Who::Anyone("ann".into())).unwrap();
        let second = sessions.start(Who::Anyone("bob".into())).unwrap();
        assert_ne!(first, second);
        let (a, b) =
            (sessions.resolve(&first, &access).unwrap(), sessions.resolve(&second, &access).unwrap());
        assert_ne!(a.csrf, b.csrf);
        assert!(!a.csrf_matches(&b.csrf));
        assert_eq!((a.name.as_str(), b.name.as_str()), ("ann", "bob"));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_under_tls() {
        assert_eq!(
            set_cookie("abc", false),
            "flagd_session=abc; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=43200"
        );
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert_eq!(cookie_value("a=1; flagd_session=xyz; b=2"), Some("xyz"));
        assert_eq!(cookie_value("flagd_sessionx=1"), None);
    }
}
