//! `X-Flagd-Signature: sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the webhook's
//! secret, so a receiver can tell flagd's requests from anyone else's. Receivers recompute it
//! over the raw body (before any JSON parsing) and compare in constant time.
//!
//! ring's HMAC: ring already hashes the token secrets, so the build has one SHA-256.

use ring::hmac;

/// The header's name.
pub(crate) const HEADER: &str = "x-flagd-signature";

/// The header's value for `body` signed with `secret`.
pub(crate) fn signature(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for &byte in tag.as_ref() {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn matches_the_rfc_4231_vector() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
