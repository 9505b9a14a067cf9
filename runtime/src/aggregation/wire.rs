//! The protobuf wire format, as far as one message needs it: a hand decoder that borrows
//! from its input (the record's bytes outlive every user record it yields) and an encoder.

/// Why bytes could not be read as protobuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The input ends inside a field: a truncated message.
    Truncated,
    /// The input is not protobuf at all (a field number 0, an unknown wire type, a varint
    /// longer than ten bytes).
    Malformed,
}

/// A field's value, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width values: no field of ours uses them, so they are skipped.
    Fixed,
}

/// Reads the fields of one message in order.
pub(crate) struct Fields<'a> {
    input: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Fields { input }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (index, byte) in self.input.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                self.input = &self.input[index + 1..];
                return Ok(value);
            }
        }
        Err(if self.input.len() < 10 { WireError::Truncated } else { WireError::Malformed })
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
        if len > self.input.len() {
            return Err(WireError::Truncated);
        }
        let (taken, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(taken)
    }

    /// The next field as (field number, value), or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, WireError> {
        if self.input.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(WireError::Malformed);
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.take(8).map(|_| Value::Fixed)?,
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Fixed)?,
            // 3 and 4 are the deprecated groups, 6 and 7 do not exist.
            _ => return Err(WireError::Malformed),
        };
        Ok(Some((number, value)))
    }
}

// The encoding half, for the producer side (feature `testing`).

/// The bytes a varint takes.
#[cfg(feature = "testing")]
pub(crate) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(feature = "testing")]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes a length-delimited field.
#[cfg(feature = "testing")]
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes a varint field.
#[cfg(feature = "testing")]
pub(crate) fn put_uint(out: &mut Vec<u8>, number: u64, value: u64) {
    put_varint(out, number << 3);
    put_varint(out, value);
}

/// The size of a length-delimited field of `len` bytes, with a one-byte key.
#[cfg(feature = "testing")]
pub(crate) fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_know_their_length() {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut fields = Fields::new(&out);
            assert_eq!(fields.varint(), Ok(value));
        }
    }

    #[test]
    fn a_truncated_field_is_truncated_and_a_bad_wire_type_malformed() {
        let mut out = Vec::new();
        put_bytes(&mut out, 3, b"hello");
        assert_eq!(Fields::new(&out[..out.len() - 1]).next_field(), Err(WireError::Truncated));
        assert_eq!(Fields::new(&[0x0f]).next_field(), Err(WireError::Malformed), "wire type 7");
        assert_eq!(Fields::new(&[0x02, 0x00]).next_field(), Err(WireError::Malformed), "field 0");
        assert_eq!(Fields::new(&[0x08, 0xff]).next_field(), Err(WireError::Truncated));
        let long = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Fields::new(&long).next_field(), Err(WireError::Malformed));
    }
}
