//! `flagctl token hash`: the line a tokens file takes for a secret (its SHA-256, never the
//! secret itself), for a secret read from standard input or a new one made here.

use std::io::Read as _;

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::Serialize;

use crate::cli::{TokenArgs, TokenCommand};
use crate::failure::Failure;
use crate::output::Output;

/// Random bytes in a new secret: 256 bits, as many as its hash has.
const SECRET_BYTES: usize = 32;

#[derive(Debug, Serialize)]
struct Hashed {
    /// Only for a secret made here: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    sha256: String,
}

pub(crate) fn token(out: &Output, args: TokenArgs) -> anyhow::Result<()> {
    let TokenArgs { command: TokenCommand::Hash { generate } } = args;
    let (secret, shown) = if generate {
        let secret = generated()?;
        (secret.clone(), Some(secret))
    } else {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|error| Failure::Invalid(format!("reading the secret from standard input: {error}")))?;
        (checked(&input)?.to_owned(), None)
    };
    let hashed = Hashed { sha256: hex_sha256(secret.as_bytes()), secret: shown };
    out.print(&hashed, || {
        let line = format!("sha256: {}", hashed.sha256);
        match &hashed.secret {
            Some(secret) => format!(
                "secret: {secret}\n{line}\n\nThe secret is shown this once and kept nowhere: give it to its client \
                 (--token, FLAGD_TOKEN, the SDK's token). The tokens file takes the sha256 line."
            ),
            None => line,
        }
    })
}

/// The secret in `input`: what a shell's `echo` or a file adds at the end (a newline, or
/// CR LF) is not part of it, so `echo s | …` and `printf s | …` hash the same secret.
fn checked(input: &str) -> Result<&str, Failure> {
    let secret = input.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(Failure::Invalid(
            "standard input: expected the secret (one line), found nothing; `--generate` makes one".into(),
        ));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::Invalid(
            "standard input: expected the secret as one line of visible ASCII without spaces \
             (it is sent in an `authorization` header)"
                .into(),
        ));
    }
    Ok(secret)
}

/// A new secret from the operating system's random generator, as URL-safe base64 (43
/// characters, no padding): it goes in a header and a shell variable as it is.
fn generated() -> anyhow::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the operating system's random generator failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of `secret` as 64 lower-case hex digits, as flagd reads it.
fn hex_sha256(secret: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret);
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_in_hex_and_a_trailing_newline_is_not_the_secret() {
        // sha256("abc"), the FIPS 180-2 example.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex_sha256(b"abc"), abc);
        for input in ["abc", "abc\n", "abc\r\n", "abc\n\n"] {
            assert_eq!(hex_sha256(checked(input).unwrap().as_bytes()), abc, "{input:?}");
        }
    }

    #[test]
    fn a_secret_that_cannot_be_sent_is_refused() {
        for input in ["", "\n", "two words", "tab\there", "two\nlines", "ünïcode"] {
            let Err(Failure::Invalid(message)) = checked(input) else { panic!("{input:?} accepted") };
            assert!(message.starts_with("standard input: expected the secret"), "{message}");
        }
    }

    #[test]
    fn generated_secrets_are_43_url_safe_characters_and_differ() {
        let (one, two) = (generated().unwrap(), generated().unwrap());
        assert_ne!(one, two);
        for secret in [&one, &two] {
            assert_eq!(secret.len(), 43, "{secret}");
            assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{secret}");
            assert!(checked(secret).is_ok());
        }
    }
}
