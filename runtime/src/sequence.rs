//! Kinesis sequence numbers: decimal strings of up to 128 digits (about 56 in practice),
//! wider than any machine integer, so they are compared as big integers in text form.

use std::cmp::Ordering;

/// Whether `text` is a sequence number: one or more ASCII digits, nothing else.
///
/// Every record's is checked, so eight digits at a time.
pub(crate) fn is_valid(text: &str) -> bool {
    let chunks = text.as_bytes().chunks_exact(8);
    let rest = chunks.remainder();
    !text.is_empty()
        && chunks.map(|eight| u64::from_le_bytes(eight.try_into().unwrap())).all(eight_digits)
        && rest.iter().all(u8::is_ascii_digit)
}

/// Whether all eight bytes of `word` are `0`..=`9` (0x30..=0x39): every high nibble is 3,
/// and adding 6 to every byte carries none of the low nibbles past 9 into it.
fn eight_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    word & HIGH == THREES && (word + SIXES) & HIGH == THREES
}

/// Compares two valid sequence numbers as unsigned big integers.
///
/// Leading zeros do not count: the number with more significant digits is larger, and
/// numbers of equal length compare digit by digit.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_numbers_are_larger_whatever_their_digits() {
        assert_eq!(compare("9", "10"), Ordering::Less);
        assert_eq!(
            compare(
                "49590338271490256608559692538361571095921575989136588898",
                "4959033827149025660855969253836157109592157598913658889"
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn equal_lengths_compare_digit_by_digit_beyond_u128() {
        let a = "49590338271490256608559692538361571095921575989136588898";
        let b = "49590338271490256608559692538361571095921575989136588899";
        assert!(a.parse::<u128>().is_err(), "the test must exceed u128");
        assert_eq!(compare(a, b), Ordering::Less);
        assert_eq!(compare(b, a), Ordering::Greater);
        assert_eq!(compare(a, a), Ordering::Equal);
    }

    #[test]
    fn leading_zeros_do_not_count() {
        assert_eq!(compare("007", "7"), Ordering::Equal);
        assert_eq!(compare("0010", "9"), Ordering::Greater);
        assert_eq!(compare("0", "000"), Ordering::Equal);
    }

    proptest::proptest! {
        #[test]
        fn digit_checks_agree_with_byte_by_byte(text in "[0-9]{0,70}|[0-9/:;A@ -]{0,70}|\\PC{0,20}") {
            let expected = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            proptest::prop_assert_eq!(is_valid(&text), expected);
        }
    }

    #[test]
    fn only_digits_are_valid() {
        assert!(is_valid("0"));
        assert!(is_valid("49590338271490256608559692538361571095921575989136588898"));
        assert!(!is_valid(""));
        assert!(!is_valid("-1"));
        assert!(!is_valid("12 3"));
        assert!(!is_valid("1e5"));
        // Inside the eight-byte words: the neighbours of '0' and '9', and bytes with a
        // low nibble above 9.
        assert!(is_valid("0123456789012345"));
        assert!(!is_valid("1234567:12345678"));
        assert!(!is_valid("12345678/2345678"));
        assert!(!is_valid("123456781234567?"));
        assert!(!is_valid("12\u{33}4567812345678\u{e9}"));
    }
}
