//! Kinesis sequence numbers: decimal strings of up to 128 digits (about 56 in practice),
//! wider than any machine integer, so they are compared as big integers in text form.

use std::cmp::Ordering;

/// Whether `text` is a sequence number: one or more ASCII digits, nothing else.
pub(crate) fn is_valid(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
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

    #[test]
    fn only_digits_are_valid() {
        assert!(is_valid("0"));
        assert!(is_valid("49590338271490256608559692538361571095921575989136588898"));
        assert!(!is_valid(""));
        assert!(!is_valid("-1"));
        assert!(!is_valid("12 3"));
        assert!(!is_valid("1e5"));
    }
}
