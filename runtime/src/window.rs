//! Tumbling windows: the [`Window`] an invocation belongs to, the window state Lambda
//! carries between its invocations, and that state's JSON form.
//!
//! With `TumblingWindowInSeconds` on the event source mapping, Lambda adds to each event
//! the window (`start`, `end`), the `state` the previous invocation of the window returned
//! and whether this is the window's final invocation. A window processor folds each
//! record into a [`WindowState`] and answers with the new state; on the final invocation
//! its window-end function gets the finished state.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::Error;

/// The most state Lambda carries for a shard's window: 1 MB, as the response serializes it.
pub const MAX_STATE_BYTES: usize = 1024 * 1024;

/// The version of the state's JSON form, `{"version": 1, "value": ..}`.
pub const STATE_VERSION: u32 = 1;

/// What a window processor folds records into: its window state.
///
/// Implemented for every type that is `Default` (the state of a window's first
/// invocation), `Clone` (each attempt folds into a copy, kept only if the record
/// succeeds), and serde both ways (Lambda carries it as JSON between invocations).
///
/// The copy is made once per attempt, so its cost is paid per record: keep the state
/// small (totals, not records), or use a map whose clone is cheap, such as a persistent
/// map that shares its nodes between copies. A `BTreeMap` of 131 counters costs about
/// 3 us a record to copy (`benchmarks/README.md`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a window state",
    note = "a window state must be `Default + Clone + Serialize + DeserializeOwned + Send + \
            Sync + 'static`: derive `Clone, Default, Serialize, Deserialize`"
)]
pub trait WindowState:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<W: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static> WindowState for W {}

/// The tumbling window an invocation belongs to, as the window-end function sees it.
///
/// ```
/// use kinesis_processor::{RecordError, Window};
///
/// /// Writes the window's total; keyed by the window's start, so that a retried final
/// /// invocation writes the same item again.
/// async fn publish(total: u64, window: &Window, _: &()) -> Result<(), RecordError> {
///     let start = humantime::format_rfc3339(window.start());
///     println!("{start} {:?}: {total}", window.shard_id());
///     Ok(())
/// }
/// # let _ = publish;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    start: SystemTime,
    end: SystemTime,
    shard_id: Option<String>,
    event_source_arn: Option<String>,
    terminated_early: bool,
}

impl Window {
    /// When the window starts.
    pub fn start(&self) -> SystemTime {
        self.start
    }

    /// When the window ends (exclusive).
    pub fn end(&self) -> SystemTime {
        self.end
    }

    /// The shard whose records the window holds.
    pub fn shard_id(&self) -> Option<&str> {
        self.shard_id.as_deref()
    }

    /// The stream's ARN.
    pub fn event_source_arn(&self) -> Option<&str> {
        self.event_source_arn.as_deref()
    }

    /// Whether Lambda ended the window before its time, because its state grew past
    /// [`MAX_STATE_BYTES`]; later records of the same window start from a fresh state.
    pub fn terminated_early(&self) -> bool {
        self.terminated_early
    }
}

/// The window fields of one invocation's event.
pub(crate) struct WindowEvent<W> {
    /// The state the window's previous invocation returned, decoded.
    pub state: W,
    pub opened: Opened,
}

/// What the end of a window processor's invocation needs of its event.
pub(crate) struct Opened {
    pub window: Window,
    /// The state as Lambda sent it, to answer with when this invocation keeps nothing.
    pub given: Box<RawValue>,
    pub is_final: bool,
}

/// The event's window fields as Lambda writes them; `Records` is skipped here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    window: Option<Bounds>,
    state: Option<Box<RawValue>>,
    shard_id: Option<String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    #[serde(default)]
    is_final_invoke_for_window: bool,
    #[serde(default)]
    is_window_terminated_early: bool,
}

#[derive(Deserialize)]
struct Bounds {
    start: String,
    end: String,
}

/// The state's JSON form: versioned, so that a later version can read what this one wrote.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Versioned<W> {
    version: u32,
    value: W,
}

impl<W: WindowState> WindowEvent<W> {
    /// Reads the window fields of a payload; an event without a window, or with a state
    /// this processor did not write, is an invocation error.
    pub fn read(payload: &[u8]) -> Result<Self, Error> {
        let payload = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
        let fields: Fields = serde_json::from_slice(payload).map_err(|error| {
            Error::InvalidWindow(format!("the window fields cannot be read: {error}"))
        })?;
        let bounds = fields.window.ok_or_else(|| {
            Error::InvalidWindow(
                "the event has no `window`: a window processor needs \
                 `TumblingWindowInSeconds` on its event source mapping"
                    .into(),
            )
        })?;
        let window = Window {
            start: instant(&bounds.start, "start")?,
            end: instant(&bounds.end, "end")?,
            shard_id: fields.shard_id,
            event_source_arn: fields.event_source_arn,
            terminated_early: fields.is_window_terminated_early,
        };
        let given = fields.state.unwrap_or_else(empty_state);
        let state = decode_state(&given)?;
        let is_final = fields.is_final_invoke_for_window;
        Ok(WindowEvent { state, opened: Opened { window, given, is_final } })
    }
}

/// `{}`: the state of a window's first invocation.
fn empty_state() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is JSON")
}

/// One of the window's bounds, in RFC 3339.
fn instant(text: &str, which: &str) -> Result<SystemTime, Error> {
    humantime::parse_rfc3339_weak(text).map_err(|error| {
        Error::InvalidWindow(format!(
            "the window's {which} `{text}` is not an RFC 3339 time: {error}"
        ))
    })
}

/// The window state from the event's `state`: `{}` or `null` is a fresh state.
pub(crate) fn decode_state<W: WindowState>(state: &RawValue) -> Result<W, Error> {
    let text = state.get().trim();
    if text == "{}" || text == "null" {
        return Ok(W::default());
    }
    match serde_json::from_str::<Versioned<W>>(text) {
        Ok(versioned) if versioned.version == STATE_VERSION => Ok(versioned.value),
        Ok(versioned) => Err(Error::InvalidWindow(format!(
            "the event's `state` has version {}; this processor reads version {STATE_VERSION}",
            versioned.version
        ))),
        Err(error) => Err(Error::InvalidWindow(format!(
            "the event's `state` is not a state this processor wrote \
             (`{{\"version\": {STATE_VERSION}, \"value\": ..}}`): {error}"
        ))),
    }
}

/// The state's JSON form for the response, or why Lambda cannot take it.
pub(crate) fn encode_state<W: WindowState>(state: &W) -> Result<Box<RawValue>, String> {
    let versioned = Versioned { version: STATE_VERSION, value: state };
    let text = serde_json::to_string(&versioned)
        .map_err(|error| format!("the window state cannot be serialized: {error}"))?;
    if text.len() > MAX_STATE_BYTES {
        return Err(format!(
            "the window state is {} bytes as JSON, over Lambda's limit of {MAX_STATE_BYTES} \
             bytes (1 MB) per shard",
            text.len()
        ));
    }
    Ok(RawValue::from_string(text).expect("serde_json writes JSON"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    type Views = BTreeMap<String, u64>;

    fn event(extra: &str) -> Vec<u8> {
        format!(r#"{{"Records": [], "shardId": "shardId-000000000006", {extra}}}"#).into_bytes()
    }

    #[test]
    fn reads_the_window_fields_lambda_sends() {
        let payload = event(
            r#""window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"},
               "state": {}, "isFinalInvokeForWindow": true, "isWindowTerminatedEarly": false,
               "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s""#,
        );
        let read = WindowEvent::<Views>::read(&payload).unwrap();
        assert!(read.opened.is_final);
        assert!(read.state.is_empty());
        assert_eq!(read.opened.window.shard_id(), Some("shardId-000000000006"));
        let length = read.opened.window.end().duration_since(read.opened.window.start()).unwrap();
        assert_eq!(length, Duration::from_secs(120));
        let since_epoch =
            read.opened.window.start().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch.as_secs(), 1_607_497_440);
    }

    #[test]
    fn the_state_json_form_is_pinned() {
        let views = Views::from([("/home".to_owned(), 3)]);
        let encoded = encode_state(&views).unwrap();
        assert_eq!(encoded.get(), r#"{"version":1,"value":{"/home":3}}"#);
        assert_eq!(decode_state::<Views>(&encoded).unwrap(), views);
    }

    #[test]
    fn a_missing_or_null_state_is_a_fresh_one() {
        let window =
            r#""window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"}"#;
        assert!(WindowEvent::<Views>::read(&event(window)).unwrap().state.is_empty());
        let null = format!(r#"{window}, "state": null"#);
        assert!(WindowEvent::<Views>::read(&event(&null)).unwrap().state.is_empty());
    }

    #[test]
    fn malformed_windows_and_states_are_invocation_errors() {
        let window =
            r#""window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"}"#;
        let cases = [
            (String::from(r#""state": {}"#), "has no `window`"),
            (
                r#""window": {"start": "yesterday", "end": "2020-12-09T07:06:00Z"}"#.into(),
                "not an RFC 3339",
            ),
            (r#""window": 7"#.into(), "cannot be read"),
            (format!(r#"{window}, "state": {{"1": 282}}"#), "not a state this processor wrote"),
            (format!(r#"{window}, "state": {{"version": 2, "value": {{}}}}"#), "version 2"),
            (format!(r#"{window}, "state": {{"version": 1, "value": 5}}"#), "not a state"),
        ];
        for (fields, expected) in cases {
            let error = WindowEvent::<Views>::read(&event(&fields)).err().expect(&fields);
            assert!(matches!(error, Error::InvalidWindow(_)), "{fields}: {error}");
            assert!(error.to_string().contains(expected), "{fields}: {error}");
        }
    }

    #[test]
    fn a_state_over_the_limit_names_it() {
        let big = Views::from([("x".repeat(MAX_STATE_BYTES), 1)]);
        let error = encode_state(&big).unwrap_err();
        assert!(error.contains("over Lambda's limit of 1048576 bytes (1 MB)"), "{error}");
    }
}
