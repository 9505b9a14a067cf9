//! Decoding a record's `data` field: SIMD first, the exact decoder for the reason.
//!
//! Base64 is the largest single cost of a batch of plain JSON records, and `base64-simd`
//! is the fast decoder. It is stricter than what the runtime accepts (padding optional,
//! or partial) and its error names no position, so whatever it refuses goes through the
//! `base64` crate, which then accepts it or explains why not. What is accepted and the bytes it decodes to are
//! exactly those of the `base64` crate alone; a property test holds the two together.
//!
//! What the SIMD decoder takes alone is canonical text, which the bytes give back exactly
//! ([`encode`]): records are decoded ahead by it ([`decode_canonical`]) and dead-lettered
//! with their data as received, re-encoded.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{DecodeError, Engine as _};
use std::mem::MaybeUninit;

/// Standard base64, padded or not: a record is not rejected for a missing `=`.
const EXACT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Appends the bytes of `text` to `out`; on error `out` is as it was.
pub(crate) fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = out.len();
    if fast_decoder(text).decode_append(text, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    let exact = EXACT.decode_vec(text, out);
    if exact.is_err() {
        out.truncate(start);
    }
    exact
}

/// The bytes of `text`.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decode_into(text, &mut out).map(|()| out)
}

/// The bytes of `text`, in the room `room(length)` gives, when the SIMD decoder takes it;
/// `None` when it does not ([`decode_into`] then accepts it or says why not), and the room
/// may have been taken all the same.
///
/// What the SIMD decoder takes is canonical base64 (no stray bits, padding whole or
/// absent), so the bytes give back the very text: `encode(bytes, text.len() % 4 == 0)`.
pub(crate) fn decode_canonical<'a>(
    text: &[u8],
    room: impl FnOnce(usize) -> &'a mut [MaybeUninit<u8>],
) -> Option<&'a [u8]> {
    let fast = fast_decoder(text);
    let len = fast.decoded_length(text).ok()?;
    let out = base64_simd::Out::from_uninit_slice(room(len));
    fast.decode(text, out).ok().map(|bytes| &*bytes)
}

/// Base64 of `bytes`, padded or not.
pub(crate) fn encode(bytes: &[u8], padded: bool) -> String {
    let engine = if padded { base64_simd::STANDARD } else { base64_simd::STANDARD_NO_PAD };
    engine.encode_to_string(bytes)
}

/// The SIMD decoder for `text`: padded when its length is a multiple of four.
fn fast_decoder(text: &[u8]) -> base64_simd::Base64 {
    if text.len() % 4 == 0 {
        base64_simd::STANDARD
    } else {
        base64_simd::STANDARD_NO_PAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bumpalo::Bump;
    use proptest::prelude::*;

    fn exact(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
        EXACT.decode(text)
    }

    fn decode_canonical_in<'a>(text: &[u8], arena: &'a Bump) -> Option<&'a [u8]> {
        decode_canonical(text, |len| arena.alloc_slice_fill_copy(len, MaybeUninit::uninit()))
    }

    #[test]
    fn accepts_what_the_exact_decoder_accepts() {
        for text in ["", "QQ==", "QQ", "QQ=", "QUI=", "QUI", "QUJD", "QUJDRA", "QUJDRA="] {
            assert_eq!(decode(text.as_bytes()), exact(text.as_bytes()), "{text:?}");
            assert!(decode(text.as_bytes()).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn refuses_with_the_exact_decoders_reason() {
        for (text, reason) in [
            ("QR==", "Invalid last symbol 82, offset 1."),
            ("Q===", "Invalid symbol 61, offset 1."),
            ("Q", "Invalid input length: 1"),
            ("QUJD\n", "Invalid symbol 10, offset 4."),
            ("QQ==QQ==", "Invalid symbol 61, offset 2."),
        ] {
            assert_eq!(decode(text.as_bytes()).unwrap_err().to_string(), reason, "{text:?}");
        }
    }

    #[test]
    fn leaves_to_the_exact_decoder_what_is_not_canonical() {
        let arena = Bump::new();
        // Accepted, but not as they would be encoded: partial padding.
        for text in ["QQ=", "QUJDRA="] {
            assert!(decode(text.as_bytes()).is_ok(), "{text:?}");
            assert_eq!(decode_canonical_in(text.as_bytes(), &arena), None, "{text:?}");
        }
        for text in ["QR==", "Q===", "Q", "QUJD\n", "QQ==QQ==", "QUJD!!!!"] {
            assert_eq!(decode_canonical_in(text.as_bytes(), &arena), None, "{text:?}");
        }
        assert_eq!(decode_canonical_in(b"QUI=", &arena), Some(&b"AB"[..]));
        assert_eq!(decode_canonical_in(b"QUI", &arena), Some(&b"AB"[..]));
        assert_eq!(decode_canonical_in(b"", &arena), Some(&b""[..]));
    }

    #[test]
    fn leaves_the_buffer_as_it_was_on_error() {
        let mut out = b"kept".to_vec();
        assert!(decode_into(b"QUJD!!!!", &mut out).is_err());
        assert_eq!(out, b"kept");
        decode_into(b"QUJD", &mut out).unwrap();
        assert_eq!(out, b"keptABC");
    }

    proptest! {
        #[test]
        fn agrees_with_the_exact_decoder_on_any_text(text in "[A-Za-z0-9+/=\n -]{0,80}") {
            prop_assert_eq!(decode(text.as_bytes()), exact(text.as_bytes()));
        }

        #[test]
        fn what_is_decoded_ahead_encodes_back_to_its_text(
            text in "[A-Za-z0-9+/=]{0,40}|[A-Za-z0-9+/=\n _é-]{36,140}"
        ) {
            let arena = Bump::new();
            if let Some(bytes) = decode_canonical_in(text.as_bytes(), &arena) {
                prop_assert_eq!(Ok(bytes.to_vec()), exact(text.as_bytes()));
                prop_assert_eq!(encode(bytes, text.len() % 4 == 0), text);
            }
        }

        /// Long enough for the decoder's SIMD loop, which starts at 38 characters.
        #[test]
        fn one_wrong_character_is_never_decoded_ahead(
            bytes in proptest::collection::vec(any::<u8>(), 30..200),
            at in any::<proptest::sample::Index>(),
            wrong in "[=\n _é.-]",
        ) {
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let at = at.index(text.len());
            let spoiled = format!("{}{wrong}{}", &text[..at], &text[at + 1..]);
            let arena = Bump::new();
            let decoded = decode_canonical_in(spoiled.as_bytes(), &arena);
            // A `=` in place of the last character may still be valid padding.
            if decoded.is_some() {
                prop_assert_eq!(Ok(decoded.unwrap().to_vec()), exact(spoiled.as_bytes()));
                prop_assert_eq!(encode(decoded.unwrap(), true), spoiled);
            }
            prop_assert!(decoded.is_none() || (wrong == "=" && at + 3 >= text.len()));
        }

        #[test]
        fn round_trips_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(decode(text.as_bytes()).unwrap(), bytes.clone());
            let unpadded = text.trim_end_matches('=');
            prop_assert_eq!(decode(unpadded.as_bytes()).unwrap(), bytes.clone());
            let arena = Bump::new();
            for text in [text.as_str(), unpadded] {
                let decoded = decode_canonical_in(text.as_bytes(), &arena);
                prop_assert_eq!(decoded, Some(&bytes[..]), "{}", text);
                prop_assert_eq!(encode(&bytes, text.len() % 4 == 0), text);
            }
        }
    }
}
