//! Principals — a named token with a role and the environments it may touch — and the one
//! access decision: may this principal make this call? Pure, so every rule is unit-tested.
//!
//! | role | may |
//! |---|---|
//! | `admin` | everything in its environments, creating and deleting them too; the whole store (backup) with `["*"]` |
//! | `writer` | read and write flags and segments (apply, promote into, restore, bookmark) and follow changes, in its environments |
//! | `reader` | read (flags, segments, history, diff, evaluate, bookmarks, acknowledgements) and follow changes, in its environments |
//! | `sdk` | follow changes (Sync) in its environments; no Admin call |
//!
//! A call touching two environments is checked for each: a diff reads both, a promote reads
//! its source and writes its target.

use std::fmt;

use flag_proto::{Reach, Touch};

/// What a principal may do, before its environments narrow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Writer,
    Reader,
    Sdk,
}

impl Role {
    /// Every role, as the tokens file spells them.
    pub(crate) const NAMES: [(&'static str, Role); 4] =
        [("admin", Role::Admin), ("writer", Role::Writer), ("reader", Role::Reader), ("sdk", Role::Sdk)];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Sdk => "sdk",
        }
    }

    fn may(self, touch: Touch) -> bool {
        match (self, touch) {
            (Role::Admin, Touch::Manage) => true,
            (Role::Writer | Role::Reader | Role::Sdk, Touch::Manage) => false,
            (Role::Admin | Role::Writer, Touch::Write) => true,
            (Role::Admin | Role::Writer | Role::Reader, Touch::Read) => true,
            (Role::Reader | Role::Sdk, Touch::Write) | (Role::Sdk, Touch::Read) => false,
            // A touch added to the wire later is refused until a role is given it here.
            (_, _) => false,
        }
    }
}

/// The environments a principal may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Environments {
    /// `["*"]`: every environment, including ones created later.
    All,
    /// These, by name.
    Only(Vec<String>),
}

impl Environments {
    fn contains(&self, environment: &str) -> bool {
        match self {
            Environments::All => true,
            Environments::Only(names) => names.iter().any(|name| name == environment),
        }
    }
}

impl fmt::Display for Environments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environments::All => f.write_str("all environments"),
            Environments::Only(names) => f.write_str(&names.join(", ")),
        }
    }
}

/// One named token: who it is, what it may do, where.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The name recorded as the actor of its writes.
    pub(crate) name: String,
    /// SHA-256 of its secret: the secret itself is never held.
    pub(crate) digest: [u8; 32],
    pub(crate) role: Role,
    pub(crate) environments: Environments,
}

// The digest stays out of logs: it is as good as the secret for a guessing attack.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("environments", &self.environments)
            .finish_non_exhaustive()
    }
}

/// What a principal was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Touching an environment.
    Environment { touch: &'static str, environment: String },
    /// The whole store (a backup).
    Store,
    /// Any Admin call (an SDK principal).
    Admin,
}

/// A refusal naming the principal, its role and environments, and what it may not do:
/// `principal "ci-bot" (writer for staging) may not write environment "production"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("principal {name:?} ({role} for {environments}) {}", refused_text(.refused))]
pub(crate) struct Denied {
    pub(crate) name: String,
    pub(crate) role: &'static str,
    pub(crate) environments: String,
    pub(crate) refused: Refused,
}

fn refused_text(refused: &Refused) -> String {
    match refused {
        Refused::Environment { touch, environment } => format!("may not {touch} environment {environment:?}"),
        Refused::Store => "may not copy the whole store: a backup needs an admin for all environments".into(),
        Refused::Admin => {
            "may only follow changes (Sync): Admin calls need an admin, writer or reader".into()
        }
    }
}

impl Principal {
    fn denied(&self, refused: Refused) -> Denied {
        Denied {
            name: self.name.clone(),
            role: self.role.name(),
            environments: self.environments.to_string(),
            refused,
        }
    }

    /// Whether this principal may make an Admin call that reaches `reach`.
    pub(crate) fn may_call(&self, reach: &Reach) -> Result<(), Denied> {
        if self.role == Role::Sdk {
            return Err(self.denied(Refused::Admin));
        }
        match reach {
            Reach::Store if self.role == Role::Admin && self.environments == Environments::All => Ok(()),
            Reach::Store => Err(self.denied(Refused::Store)),
            Reach::Environments(touched) => {
                for (touch, environment) in touched {
                    if !(self.role.may(*touch) && self.environments.contains(environment)) {
                        let touch = match touch {
                            Touch::Read => "read",
                            Touch::Write => "write",
                            Touch::Manage => "create or delete",
                            // A touch added to the wire later is named by what it is.
                            _ => "reach",
                        };
                        let environment = environment.clone();
                        return Err(self.denied(Refused::Environment { touch, environment }));
                    }
                }
                Ok(())
            }
            // A reach added to the wire later is refused until it is decided here.
            _ => Err(self.denied(Refused::Store)),
        }
    }

    /// Whether this principal may read `environment` (an environment list shows only those).
    pub(crate) fn may_read(&self, environment: &str) -> bool {
        self.role.may(Touch::Read) && self.environments.contains(environment)
    }

    /// Whether this principal may change `environment`'s flags (the console shows write
    /// buttons only where this holds; the Admin call checks again).
    pub(crate) fn may_write(&self, environment: &str) -> bool {
        self.role.may(Touch::Write) && self.environments.contains(environment)
    }

    /// The environments this principal may read, by name; `None` when it may read every one.
    pub(crate) fn readable_environments(&self) -> Option<Vec<String>> {
        if !self.role.may(Touch::Read) {
            return Some(Vec::new());
        }
        match &self.environments {
            Environments::All => None,
            Environments::Only(names) => Some(names.clone()),
        }
    }

    /// Whether this principal may follow `environment`'s changes (`Sync.Watch`): any role,
    /// in its environments.
    pub(crate) fn may_follow(&self, environment: &str) -> Result<(), Denied> {
        if self.environments.contains(environment) {
            return Ok(());
        }
        Err(self.denied(Refused::Environment { touch: "follow", environment: environment.to_owned() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, role: Role, environments: &[&str]) -> Principal {
        let environments = match environments {
            ["*"] => Environments::All,
            names => Environments::Only(names.iter().map(|n| (*n).to_owned()).collect()),
        };
        Principal { name: name.into(), digest: [0; 32], role, environments }
    }

    fn one(touch: Touch, environment: &str) -> Reach {
        Reach::Environments(vec![(touch, environment.to_owned())])
    }

    #[test]
    fn each_role_reads_and_writes_what_its_row_says_in_its_environments() {
        use Touch::{Read, Write};
        let cases = [
            (Role::Admin, Read, true),
            (Role::Admin, Write, true),
            (Role::Writer, Read, true),
            (Role::Writer, Write, true),
            (Role::Reader, Read, true),
            (Role::Reader, Write, false),
            (Role::Sdk, Read, false),
            (Role::Sdk, Write, false),
        ];
        for (role, touch, allowed) in cases {
            let staging = principal("p", role, &["staging"]);
            assert_eq!(staging.may_call(&one(touch, "staging")).is_ok(), allowed, "{role:?} {touch:?}");
            // Outside its environments, nothing.
            assert!(staging.may_call(&one(touch, "production")).is_err(), "{role:?} {touch:?}");
            let everywhere = principal("p", role, &["*"]);
            assert_eq!(everywhere.may_call(&one(touch, "production")).is_ok(), allowed, "{role:?} {touch:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_principal_its_role_and_the_environment() {
        let bot = principal("ci-bot", Role::Writer, &["staging"]);
        let denied = bot.may_call(&one(Touch::Write, "production")).unwrap_err();
        assert_eq!(
            denied.to_string(),
            r#"principal "ci-bot" (writer for staging) may not write environment "production""#
        );
        let reader = principal("auditor", Role::Reader, &["staging", "production"]);
        assert_eq!(
            reader.may_call(&one(Touch::Write, "staging")).unwrap_err().to_string(),
            r#"principal "auditor" (reader for staging, production) may not write environment "staging""#
        );
    }

    #[test]
    fn a_call_on_two_environments_is_checked_for_each() {
        let bot = principal("ci-bot", Role::Writer, &["staging", "dev"]);
        let promote = |from: &str, to: &str| {
            Reach::Environments(vec![(Touch::Read, from.to_owned()), (Touch::Write, to.to_owned())])
        };
        bot.may_call(&promote("staging", "dev")).unwrap();
        let denied = bot.may_call(&promote("production", "dev")).unwrap_err();
        assert!(denied.to_string().ends_with(r#"may not read environment "production""#), "{denied}");
        let denied = bot.may_call(&promote("staging", "production")).unwrap_err();
        assert!(denied.to_string().ends_with(r#"may not write environment "production""#), "{denied}");
        let diff = Reach::Environments(vec![(Touch::Read, "dev".into()), (Touch::Read, "production".into())]);
        assert!(bot.may_call(&diff).is_err());
    }

    #[test]
    fn only_an_admin_for_all_environments_copies_the_whole_store() {
        principal("root", Role::Admin, &["*"]).may_call(&Reach::Store).unwrap();
        let narrow = principal("ops", Role::Admin, &["staging"]).may_call(&Reach::Store).unwrap_err();
        assert!(narrow.to_string().contains("a backup needs an admin for all environments"), "{narrow}");
        assert!(principal("w", Role::Writer, &["*"]).may_call(&Reach::Store).is_err());
    }

    #[test]
    fn an_sdk_principal_makes_no_admin_call_and_any_role_follows_its_environments() {
        let sdk = principal("web", Role::Sdk, &["production"]);
        let denied = sdk.may_call(&one(Touch::Read, "production")).unwrap_err();
        assert_eq!(denied.refused, Refused::Admin);
        assert!(denied.to_string().starts_with(r#"principal "web" (sdk for production) may only follow"#));
        sdk.may_follow("production").unwrap();
        assert_eq!(
            sdk.may_follow("staging").unwrap_err().to_string(),
            r#"principal "web" (sdk for production) may not follow environment "staging""#
        );
        for role in [Role::Admin, Role::Writer, Role::Reader] {
            principal("p", role, &["staging"]).may_follow("staging").unwrap();
        }
    }

    #[test]
    fn the_digest_stays_out_of_debug_output() {
        let mut bot = principal("ci-bot", Role::Writer, &["staging"]);
        bot.digest = [0xab; 32];
        let shown = format!("{bot:?}");
        assert!(shown.contains("ci-bot") && !shown.contains("171") && !shown.contains("ab"), "{shown}");
    }
}
