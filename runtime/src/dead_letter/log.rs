//! [`LogDeadLetter`]: the explicit choice to log poison records and move on.

use super::{DeadLetter, DeadLetterSink, SinkError};

/// Logs each dead letter as a `tracing` event at `WARN` (target `kinesis_processor::dead_letter`)
/// and confirms it: the record is done. Choose it when a log line is enough to find and
/// replay a poison record; without any sink, poison records are reported to Lambda instead
/// and block their shard until the event source mapping gives up on them.
///
/// The envelope is logged without the record's data unless [`with_data`](Self::with_data)
/// asks for it, since payloads may hold personal data.
///
/// ```no_run
/// # use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::dead_letter::LogDeadLetter;
/// # #[kinesis_processor(format = text)]
/// # async fn track(line: String) -> Result<(), RecordError> { Ok(()) }
///
/// # async fn main_() -> Result<(), kinesis_processor::Error> {
/// track().dead_letter(LogDeadLetter::new()).run().await
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct LogDeadLetter {
    with_data: bool,
}

impl LogDeadLetter {
    /// Logs envelopes without the records' data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs envelopes with the records' data (base64).
    ///
    /// ```
    /// let sink = kinesis_processor::dead_letter::LogDeadLetter::new().with_data();
    /// # let _ = sink;
    /// ```
    pub fn with_data(self) -> Self {
        Self { with_data: true }
    }
}

impl DeadLetterSink for LogDeadLetter {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        letters.iter().map(|letter| self.log(letter)).collect()
    }

    fn batch_size(&self) -> usize {
        100
    }

    fn logs_each_letter(&self) -> bool {
        true
    }
}

impl LogDeadLetter {
    fn log(&self, letter: &DeadLetter) -> Result<(), SinkError> {
        let envelope = if self.with_data {
            serde_json::to_string(letter)
        } else {
            serde_json::to_string(&DeadLetter { data: None, ..letter.clone() })
        }
        .map_err(SinkError::new)?;
        tracing::warn!(
            target: "kinesis_processor::dead_letter",
            sequence_number = letter.sequence_number,
            sub_sequence_number = letter.sub_sequence_number,
            partition_key = letter.partition_key,
            reason = letter.reason.as_str(),
            envelope = %envelope,
            "dead letter"
        );
        Ok(())
    }
}
