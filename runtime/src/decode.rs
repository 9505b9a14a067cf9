//! Payload formats: how a record's bytes become the processing function's first argument.
//!
//! The attribute's `format` option picks one: `json` ([`Json`], the default), `text`
//! ([`Text`]), `bytes` ([`Bytes`]), or the path to a type of yours implementing [`Decode`]
//! (protobuf, Avro, CSV, ...). A decode failure is permanent: the record is dead-lettered
//! with reason `decode_error` and never retried.

use serde::de::DeserializeOwned;

use crate::error::BoxError;

/// Turns a record's bytes into the payload type `T`.
///
/// Implement it for a format of your own and name the type in the attribute:
///
/// ```
/// use kinesis_processor::{decode::Decode, kinesis_processor, BoxError, RecordError};
///
/// /// Comma-separated values, split into fields.
/// pub struct Csv;
///
/// impl Decode<Vec<String>> for Csv {
///     fn decode(data: &[u8]) -> Result<Vec<String>, BoxError> {
///         let line = std::str::from_utf8(data)?;
///         Ok(line.split(',').map(str::to_owned).collect())
///     }
/// }
///
/// #[kinesis_processor(format = Csv)]
/// async fn load(fields: Vec<String>) -> Result<(), RecordError> {
///     println!("{} fields", fields.len());
///     Ok(())
/// }
/// # let _ = load();
/// ```
#[diagnostic::on_unimplemented(
    message = "the payload format `{Self}` cannot decode a `{T}`",
    label = "`{Self}` cannot decode this payload type",
    note = "`format = json` decodes any `serde::Deserialize` type, `format = text` a `String`, \
            `format = bytes` a `Vec<u8>` or `bytes::Bytes`; for anything else implement \
            `kinesis_processor::decode::Decode<{T}>` and write `format = YourFormat`"
)]
pub trait Decode<T> {
    /// Decodes one record's data. An error makes the record undecodable (permanent).
    fn decode(data: &[u8]) -> Result<T, BoxError>;
}

/// JSON, through `serde_json`, into any `T: serde::Deserialize` (`format = json`).
///
/// ```
/// use kinesis_processor::decode::{Decode, Json};
/// let n: Vec<u8> = Json::decode(b"[1, 2]").unwrap();
/// assert_eq!(n, [1, 2]);
/// // Bytes that are not UTF-8 are a decode error, not a panic.
/// assert!(<Json as Decode<String>>::decode(b"\"\xff\"").is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: DeserializeOwned> Decode<T> for Json {
    fn decode(data: &[u8]) -> Result<T, BoxError> {
        // Checking UTF-8 once over the record is cheaper than string by string; bytes that
        // are not UTF-8 get serde_json's own error, with its position.
        match std::str::from_utf8(data) {
            Ok(text) => Ok(serde_json::from_str(text)?),
            Err(_) => Ok(serde_json::from_slice(data)?),
        }
    }
}

/// UTF-8 text into a `String` (`format = text`).
///
/// ```
/// use kinesis_processor::decode::{Decode, Text};
/// let line: String = Text::decode(b"kernel: oops").unwrap();
/// assert_eq!(line, "kernel: oops");
/// assert!(<Text as Decode<String>>::decode(&[0xff]).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

impl Decode<String> for Text {
    fn decode(data: &[u8]) -> Result<String, BoxError> {
        Ok(std::str::from_utf8(data)?.to_owned())
    }
}

/// The bytes as they are, into a `Vec<u8>` or a `bytes::Bytes` (`format = bytes`).
///
/// ```
/// use kinesis_processor::decode::{Bytes, Decode};
/// let raw: Vec<u8> = Bytes::decode(&[0, 159, 146, 150]).unwrap();
/// assert_eq!(raw, [0, 159, 146, 150]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Decode<Vec<u8>> for Bytes {
    fn decode(data: &[u8]) -> Result<Vec<u8>, BoxError> {
        Ok(data.to_vec())
    }
}

impl Decode<bytes::Bytes> for Bytes {
    fn decode(data: &[u8]) -> Result<bytes::Bytes, BoxError> {
        Ok(bytes::Bytes::copy_from_slice(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Click {
        user: String,
    }

    #[test]
    fn json_of_the_wrong_shape_is_an_error_naming_the_field() {
        let err = <Json as Decode<Click>>::decode(br#"{"usr":"a"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `user`"), "{err}");
        let err = <Json as Decode<Click>>::decode(b"{not json").unwrap_err();
        assert!(err.to_string().contains("key must be a string"), "{err}");
    }

    #[test]
    fn text_must_be_utf8() {
        let err = <Text as Decode<String>>::decode(&[b'a', 0xc3, 0x28]).unwrap_err();
        assert!(err.to_string().contains("invalid utf-8"), "{err}");
    }

    #[test]
    fn bytes_are_kept_whole() {
        let data: bytes::Bytes = Bytes::decode(&[1, 2, 3]).unwrap();
        assert_eq!(&data[..], &[1, 2, 3]);
    }
}
