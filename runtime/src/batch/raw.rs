//! The JSON text of records that are not JSON objects, for their dead letters: a second
//! pass over the payload, made only when such records were seen.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The text of each record of `Records` whose index is in `wanted` (ascending), with its
/// index. Empty if the payload cannot be read again, which the first pass already ruled out.
pub(super) fn records<'b>(payload: &'b [u8], wanted: &[usize]) -> Vec<(usize, &'b str)> {
    let mut found = Vec::with_capacity(wanted.len());
    let seed = DocumentSeed { wanted, found: &mut found };
    let read = match std::str::from_utf8(payload) {
        Ok(text) => seed.deserialize(&mut serde_json::Deserializer::from_str(text)),
        Err(_) => seed.deserialize(&mut serde_json::Deserializer::from_slice(payload)),
    };
    if read.is_err() {
        found.clear();
    }
    found
}

struct DocumentSeed<'w, 'f, 'b> {
    wanted: &'w [usize],
    found: &'f mut Vec<(usize, &'b str)>,
}

impl<'de: 'b, 'b> DeserializeSeed<'de> for DocumentSeed<'_, '_, 'b> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'b, 'b> Visitor<'de> for DocumentSeed<'_, '_, 'b> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kinesis event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&str>()? {
            if key == "Records" {
                map.next_value_seed(RecordsSeed { wanted: self.wanted, found: &mut *self.found })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct RecordsSeed<'w, 'f, 'b> {
    wanted: &'w [usize],
    found: &'f mut Vec<(usize, &'b str)>,
}

impl<'de: 'b, 'b> DeserializeSeed<'de> for RecordsSeed<'_, '_, 'b> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de: 'b, 'b> Visitor<'de> for RecordsSeed<'_, '_, 'b> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut wanted = self.wanted.iter().peekable();
        let mut index = 0;
        loop {
            if wanted.next_if_eq(&&index).is_some() {
                let Some(raw) = seq.next_element::<&'de RawValue>()? else { break };
                self.found.push((index, raw.get()));
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wanted_records_come_back_as_they_were_written() {
        let payload = br#"{"other": [1], "Records": [{"a": 1}, "text", {"b": 2}, [[null]], 7]}"#;
        assert_eq!(records(payload, &[1, 3, 4]), [(1, r#""text""#), (3, "[[null]]"), (4, "7")]);
        assert_eq!(records(payload, &[]), []);
    }

    #[test]
    fn a_deep_nesting_is_read_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let payload = format!(r#"{{"Records": [{deep}]}}"#);
        assert_eq!(records(payload.as_bytes(), &[0]), [(0, deep.as_str())]);
    }
}
