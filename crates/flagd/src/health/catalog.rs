//! The flags and variants of an environment at a revision: what a report may name.

use std::collections::HashMap;

use flag_core::FlagSet;

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// The environment's revision this was read at.
    pub(crate) revision: u64,
    /// Flag key → its variant names.
    flags: HashMap<String, Vec<String>>,
}

/// Whether a report's (flag, variant) exists.
pub(super) enum Known {
    Flag,
    NoFlag,
    NoVariant,
}

impl Catalog {
    pub(crate) fn of(revision: u64, set: &FlagSet) -> Catalog {
        let flags = set
            .flags
            .iter()
            .map(|flag| (flag.key.clone(), flag.variants.iter().map(|v| v.name.clone()).collect()))
            .collect();
        Catalog { revision, flags }
    }

    pub(super) fn knows(&self, flag: &str, variant: &str) -> Known {
        match self.flags.get(flag) {
            None => Known::NoFlag,
            Some(variants) if variants.iter().any(|name| name == variant) => Known::Flag,
            Some(_) => Known::NoVariant,
        }
    }
}
