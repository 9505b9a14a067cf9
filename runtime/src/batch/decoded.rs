//! Where a batch's decoded record data goes: one record's bytes after another, in stream
//! order, at rising addresses.
//!
//! Records are decoded as the parser hands them over, while their text is in cache, and
//! read back by the driver only once the whole payload is parsed, from memory. Laid out
//! in stream order at rising addresses, the reads stream and the prefetchers follow them;
//! `bumpalo` alone hands out memory downwards, so the blocks here are laid out upwards.

use std::mem::MaybeUninit;

use bumpalo::Bump;

use super::base64 as base64_data;

/// How much room is taken from the arena at a time. The prefetchers follow a stream within
/// a 4 KiB page; a block holds many pages so that the arena is asked for room rarely, and a
/// block's unused end (room too short for the next record) is under a quarter of it.
const BLOCK: usize = 64 * 1024;

/// Records larger than this get room of their own, so that the current block goes on
/// serving the smaller ones.
const OWN_ROOM: usize = BLOCK / 4;

/// The decoded data of a batch, placed in blocks of its arena, each filled upwards.
pub(crate) struct DecodedData<'b> {
    arena: &'b Bump,
    /// What is left of the current block.
    free: &'b mut [MaybeUninit<u8>],
}

impl<'b> DecodedData<'b> {
    pub fn new(arena: &'b Bump) -> Self {
        DecodedData { arena, free: Default::default() }
    }

    /// The bytes of base64 `text`, placed right after the previous record's; `None` when
    /// the text is not canonical base64 (see [`base64_data::decode_canonical`]).
    pub fn decode(&mut self, text: &str) -> Option<&'b [u8]> {
        base64_data::decode_canonical(text.as_bytes(), |len| self.take(len))
    }

    /// The next `len` bytes of room: from the current block, or from a new one when it is
    /// short (what was left of it stays unused), or of their own for a large record. Room
    /// taken for text that then fails to decode stays unused too: at most what that text
    /// would have decoded to.
    fn take(&mut self, len: usize) -> &'b mut [MaybeUninit<u8>] {
        if len > OWN_ROOM {
            return self.arena.alloc_slice_fill_copy(len, MaybeUninit::uninit());
        }
        if self.free.len() < len {
            self.free = self.arena.alloc_slice_fill_copy(BLOCK, MaybeUninit::uninit());
        }
        let (taken, rest) = std::mem::take(&mut self.free).split_at_mut(len);
        self.free = rest;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(bytes: &[u8]) -> usize {
        bytes.as_ptr() as usize
    }

    #[test]
    fn records_follow_one_another_upwards() {
        let arena = Bump::new();
        let mut data = DecodedData::new(&arena);
        let first = data.decode("QUJD").unwrap();
        let second = data.decode("REVGRw==").unwrap();
        let third = data.decode("SA").unwrap();
        assert_eq!((first, second, third), (&b"ABC"[..], &b"DEFG"[..], &b"H"[..]));
        assert_eq!(address(second), address(first) + 3);
        assert_eq!(address(third), address(second) + 4);
    }

    #[test]
    fn a_large_record_gets_room_of_its_own_and_the_block_goes_on() {
        let arena = Bump::new();
        let mut data = DecodedData::new(&arena);
        let small = data.decode("QUJD").unwrap();
        let large = "A".repeat(4 * BLOCK);
        let decoded = data.decode(&large).unwrap();
        assert_eq!(decoded, vec![0; 3 * BLOCK]);
        assert_eq!(small, b"ABC", "earlier records stay as they were");
        let next = data.decode("REVG").unwrap();
        assert_eq!(next, b"DEF");
        assert_eq!(address(next), address(small) + 3, "the block goes on after the large one");
    }

    #[test]
    fn a_record_longer_than_what_is_left_of_the_block_opens_a_new_one() {
        let arena = Bump::new();
        let mut data = DecodedData::new(&arena);
        // Records of 12 KiB fill five of a block's 64 KiB; the sixth needs a new block.
        let record = "A".repeat(16 * 1024);
        let mut decoded: Vec<&[u8]> = (0..6).map(|_| data.decode(&record).unwrap()).collect();
        let sixth = decoded.pop().unwrap();
        for pair in decoded.windows(2) {
            assert_eq!(address(pair[1]), address(pair[0]) + 12 * 1024);
        }
        let after_fifth = address(decoded[4]) + 12 * 1024;
        assert_ne!(address(sixth), after_fifth, "not written past the block's end");
        assert!(decoded.iter().chain([&sixth]).all(|bytes| bytes.len() == 12 * 1024));
    }

    #[test]
    fn text_that_is_not_canonical_is_left_to_the_exact_decoder() {
        let arena = Bump::new();
        let mut data = DecodedData::new(&arena);
        for text in ["QQ=", "QR==", "QUJD!!!!", "Q"] {
            assert_eq!(data.decode(text), None, "{text:?}");
        }
        assert_eq!(data.decode("QUJD"), Some(&b"ABC"[..]), "and the next record decodes");
    }
}
