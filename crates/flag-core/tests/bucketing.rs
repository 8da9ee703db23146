//! Buckets as users get them, checked against values computed independently: the CBOR
//! that `ciborium` writes for what a flagd provider hashes, hashed by the `murmur3` crate,
//! scaled to the split's total.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ciborium::Value as Cbor;
use flag_core::{
    AttrValue, Bucketing, Context, Flag, FlagSet, Reason, Serve, Snapshot, Split, Variant, Weight,
};
use proptest::prelude::*;

fn murmur(bytes: &[u8]) -> u32 {
    murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap()
}

fn cbor_hash(value: &Cbor) -> u32 {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap();
    murmur(&bytes)
}

fn scaled(hash: u32, total: u32) -> u32 {
    ((u64::from(hash) * u64::from(total)) >> 32) as u32
}

/// One flag whose default splits `first`/`second` by `first_weight` of `total`.
fn split_flag(key: &str, split: Split) -> Snapshot {
    let variant = |name: &str| Variant { name: name.into(), value: flag_core::Value::String(name.into()) };
    let flag = Flag {
        key: key.into(),
        description: String::new(),
        variants: vec![variant("first"), variant("second")],
        enabled: true,
        off_variant: None,
        rules: vec![],
        default: Serve::Split(split),
        prerequisites: vec![],
        version: 0,
        metadata: flag_core::Metadata::default(),
    };
    FlagSet { flags: vec![flag], segments: vec![] }.compile().unwrap()
}

fn split(bucketing: Bucketing, by: Option<&str>, salt: Option<&str>, first: u32, total: u32) -> Split {
    let weight = |variant: &str, weight: u32| Weight { variant: variant.into(), weight: weight.into() };
    Split {
        by: by.map(Into::into),
        salt: salt.map(Into::into),
        weights: vec![weight("first", first), weight("second", total - first)],
        bucketing,
    }
}

/// The bucket and variant an evaluation reports.
fn answer(snapshot: &Snapshot, key: &str, ctx: &Context<'_>) -> (u32, String) {
    let evaluation = snapshot.evaluate(key, ctx);
    let Reason::Split { bucket } = evaluation.reason else { panic!("{evaluation:?}") };
    (bucket, evaluation.variant.unwrap().to_owned())
}

fn expected_variant(bucket: u32, first: u32) -> String {
    if bucket < first { "first" } else { "second" }.to_owned()
}

/// Text of `len` bytes from `alphabet`, which may hold characters of several bytes.
fn text_of_len(len: usize, alphabet: &[char]) -> String {
    let mut text = String::with_capacity(len);
    for c in alphabet.iter().cycle() {
        if text.len() == len {
            break;
        }
        text.push(if text.len() + c.len_utf8() <= len { *c } else { 'k' });
    }
    text
}

/// Lengths on both sides of each CBOR text header boundary (24, 256, 65 536), and short ones.
fn text_len() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..40, 22usize..=25, 254usize..=257, 65_534usize..=65_537]
}

fn total_and_first() -> impl Strategy<Value = (u32, u32)> {
    let total = prop_oneof![Just(100_000u32), 1u32..=1000, 1u32..=i32::MAX as u32, Just(i32::MAX as u32)];
    total.prop_flat_map(|total| (Just(total), 0..=total))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// No `by`, salted with the flag key (or not salted): the CBOR array [flag key, targeting key].
    #[test]
    fn flagd_v3_without_by_hashes_the_pair_of_flag_key_and_targeting_key(
        flag_key in "[a-z0-9][a-z0-9._-]{0,127}",
        key_len in text_len(),
        alphabet in prop::collection::vec(any::<char>(), 1..=3),
        salted_with_key in any::<bool>(),
        (total, first) in total_and_first(),
    ) {
        let targeting_key = text_of_len(key_len, &alphabet);
        let salt = salted_with_key.then_some(flag_key.as_str());
        let snapshot = split_flag(&flag_key, split(Bucketing::FlagdV3, None, salt, first, total));
        let pair = Cbor::Array(vec![Cbor::Text(flag_key.clone()), Cbor::Text(targeting_key.clone())]);
        let bucket = scaled(cbor_hash(&pair), total);
        let got = answer(&snapshot, &flag_key, &Context::new(&targeting_key));
        prop_assert_eq!(got, (bucket, expected_variant(bucket, first)));
    }

    /// Another salt, or a `by` attribute: the CBOR text string `salt ++ bucket key`.
    #[test]
    fn flagd_v3_salted_or_by_an_attribute_hashes_one_text_string(
        salt_len in text_len(),
        key_len in text_len(),
        alphabet in prop::collection::vec(any::<char>(), 1..=3),
        by_org in any::<bool>(),
        (total, first) in total_and_first(),
    ) {
        let salt = text_of_len(salt_len, &alphabet);
        prop_assume!(by_org || salt != "chat");
        let bucket_key = text_of_len(key_len, &alphabet);
        let by = by_org.then_some("org");
        let snapshot = split_flag("chat", split(Bucketing::FlagdV3, by, Some(&salt), first, total));
        let attributes = [("org", AttrValue::Str(&bucket_key))];
        let ctx = if by_org {
            Context::new("someone-else").with_attributes(&attributes)
        } else {
            Context::new(&bucket_key)
        };
        let bucket = scaled(cbor_hash(&Cbor::Text(format!("{salt}{bucket_key}"))), total);
        prop_assert_eq!(answer(&snapshot, "chat", &ctx), (bucket, expected_variant(bucket, first)));
    }

    /// flagd-v2 (the default) hashes the bare concatenation, whatever the total.
    #[test]
    fn flagd_v2_hashes_salt_then_bucket_key(
        salt in prop::option::of(".{0,300}"),
        targeting_key in ".{0,300}",
        (total, first) in total_and_first(),
    ) {
        let snapshot = split_flag("chat", split(Bucketing::FlagdV2, None, salt.as_deref(), first, total));
        let input = format!("{}{targeting_key}", salt.as_deref().unwrap_or("chat"));
        let bucket = scaled(murmur(input.as_bytes()), total);
        let got = answer(&snapshot, "chat", &Context::new(&targeting_key));
        prop_assert_eq!(got, (bucket, expected_variant(bucket, first)));
    }
}

#[test]
fn a_whole_number_attribute_is_bucketed_as_its_decimal_text_under_flagd_v3() {
    let snapshot = split_flag("chat", split(Bucketing::FlagdV3, Some("org"), None, 50_000, 100_000));
    let number = [("org", AttrValue::Number(-12_345.0))];
    let text = [("org", AttrValue::Str("-12345"))];
    let by_number = answer(&snapshot, "chat", &Context::new("u").with_attributes(&number));
    let by_text = answer(&snapshot, "chat", &Context::new("u").with_attributes(&text));
    assert_eq!(by_number, by_text);
    assert_eq!(by_number.0, scaled(cbor_hash(&Cbor::Text("chat-12345".into())), 100_000));
}

#[test]
fn a_split_of_small_weights_gives_each_variant_its_share() {
    // Weights 1 and 3 of 4: a quarter of users get `first`.
    let snapshot = split_flag("chat", split(Bucketing::FlagdV2, None, None, 1, 4));
    let first = (0..40_000)
        .filter(|i| answer(&snapshot, "chat", &Context::new(&format!("user-{i}"))).1 == "first")
        .count();
    assert!((9_400..=10_600).contains(&first), "{first} of 40 000");
}
