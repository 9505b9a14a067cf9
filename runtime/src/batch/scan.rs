//! Byte scanners for the envelope's hot fields.

/// Where the first `:` is, eight bytes at a time: in an `eventID` it comes after about twenty
/// (`shardId-000000000006:...`).
pub(super) fn first_colon(bytes: &[u8]) -> Option<usize> {
    const COLONS: u64 = 0x3a3a_3a3a_3a3a_3a3a;
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    for (index, word) in (&mut words).enumerate() {
        // A byte of `word ^ COLONS` is zero where `word` holds a colon; the lowest byte
        // flagged by the zero-byte test is the first such byte (flags above a zero byte
        // may be false, flags below one never are).
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ COLONS;
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(index * 8 + zeros.trailing_zeros() as usize / 8);
        }
    }
    let rest = words.remainder();
    let at = rest.iter().position(|&byte| byte == b':')?;
    Some(bytes.len() - rest.len() + at)
}
