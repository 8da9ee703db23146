//! Our flag model to and from OpenFeature flagd's flag JSON, exactly or not at all.
//!
//! flagd's in-process providers (Go, Java, JavaScript, Python, .NET, Rust…) download a flag
//! file and evaluate it themselves with JSONLogic and flagd's operators (`fractional`,
//! `sem_ver`, `starts_with`, `ends_with`). [`to_flagd`] writes our flags in that form so
//! those providers answer what our evaluator answers; [`from_flagd`] reads a team's flagd
//! files into our model. Both are pure: no I/O.
//!
//! # Exact or not at all
//!
//! JSONLogic coerces: `<` reads `"  "` and a missing attribute as 0, `==` says `1 == "1"`,
//! flagd's `sem_ver` accepts `v1.2`. Export guards every clause so that those coercions
//! never decide (a clause on a missing attribute never holds, negated or not; a wrong type
//! never matches); where no guard makes a flag exact (`regex`, dates, attribute names
//! `var` reads as paths) the flag is left out and named, so a provider answers the
//! caller's default rather than a wrong value. A string where a number clause reads a
//! number is answered with an error, the caller's default too. Import does the same the other way: it
//! translates the JSONLogic our clauses can say exactly, per type of attribute, and refuses
//! the rest with the JSON path and why.
//!
//! What neither direction can pin down (documented in `docs/openfeature-json.md`): strings
//! that JavaScript's `Number` and Rust's float parser read differently (`"inf"`, `" "`,
//! `"0x10"`) when compared with numbers, and versions flagd normalises (`v1.2.3`, `1.2`) in
//! imported `sem_ver` tests.
//!
//! # Layout
//!
//! - `export` — [`to_flagd`]: flags (`export/mod.rs`, prerequisites inlined), clauses
//!   (`export/clause.rs`), serves and splits (`export/serve.rs`), segments as
//!   `$evaluators` (`export/segments.rs`), the JSONLogic guards (`export/expr.rs`), the
//!   error answered for a string where a number clause reads a number (`export/numbers.rs`).
//! - `import` — [`from_flagd`]: the file and each flag (`import/mod.rs`), targeting to rules
//!   (`import/targeting.rs`), conditions to clauses (`import/condition.rs`), one JSONLogic
//!   test as a predicate per attribute type (`import/atom.rs`).
//!
//! # Example
//!
//! ```
//! use flag_core::{Flag, FlagSet};
//! use openfeature_json::{from_flagd, to_flagd};
//!
//! let set = FlagSet { flags: vec![Flag::rollout("chat", 10.0)?], segments: vec![] };
//! let exported = to_flagd(&set);
//! assert!(exported.left_out.is_empty());
//! assert_eq!(exported.json["flags"]["chat"]["state"], "ENABLED");
//!
//! let file = serde_json::json!({
//!     "flags": { "banner": {
//!         "state": "ENABLED",
//!         "variants": { "on": true, "off": false },
//!         "defaultVariant": "off",
//!         "targeting": { "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "on"] },
//!     } },
//! });
//! let imported = from_flagd(&file);
//! assert!(imported.refused.is_empty(), "{:?}", imported.refused);
//! assert_eq!(imported.set.flags[0].rules.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod export;
mod import;

pub use export::{Exported, FLAGD_SCHEMA, LeftOut, NO_VARIANT, to_flagd};
pub use import::{Imported, Refusal, from_flagd};
