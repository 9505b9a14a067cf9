//! What the batch APIs of SQS and SNS share: at most ten entries a call, a limit on the
//! bytes of a call, and an answer that lists successful and failed entries by id.

use std::future::Future;
use std::ops::Range;

use super::SinkError;

/// Sends prepared entries (an entry and its size, or why the letter has none) in calls
/// that respect the limits, and answers for every letter in its place: an entry's call
/// answer, or its preparation error.
pub(crate) async fn send_in_calls<E, F, Fut>(
    prepared: Vec<Result<(E, usize), SinkError>>,
    max_bytes: usize,
    call: F,
) -> Vec<Result<(), SinkError>>
where
    E: Clone,
    F: Fn(Vec<E>) -> Fut,
    Fut: Future<Output = Vec<Result<(), SinkError>>>,
{
    let mut results = Vec::with_capacity(prepared.len());
    let mut entries = Vec::new();
    let mut sizes = Vec::new();
    let mut positions = Vec::new();
    for (index, entry) in prepared.into_iter().enumerate() {
        match entry {
            Ok((entry, size)) => {
                positions.push(index);
                entries.push(entry);
                sizes.push(size);
                results.push(Ok(()));
            }
            Err(error) => results.push(Err(error)),
        }
    }
    let mut answered = Vec::with_capacity(entries.len());
    for range in calls(&sizes, max_bytes) {
        answered.extend(call(entries[range].to_vec()).await);
    }
    for (position, answer) in positions.into_iter().zip(answered) {
        results[position] = answer;
    }
    results
}

/// Entries per `SendMessageBatch` or `PublishBatch` call.
pub(crate) const MAX_ENTRIES: usize = 10;

/// Splits entries of the given sizes into consecutive calls of at most `MAX_ENTRIES`
/// entries and `max_bytes` bytes. Every size must be at most `max_bytes`.
pub(crate) fn calls(sizes: &[usize], max_bytes: usize) -> Vec<Range<usize>> {
    let mut calls = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, size) in sizes.iter().enumerate() {
        if index > start && (index - start == MAX_ENTRIES || bytes + size > max_bytes) {
            calls.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        calls.push(start..sizes.len());
    }
    calls
}

/// The answer for each entry of a call whose entries had ids `"0"`, `"1"`, ...: `Ok` for
/// the ids listed as successful, the service's error for those listed as failed, and an
/// error for any id the answer does not mention.
pub(crate) fn answers<'a>(
    entries: usize,
    successful: impl Iterator<Item = &'a str>,
    failed: impl Iterator<Item = (&'a str, String)>,
) -> Vec<Result<(), SinkError>> {
    let mut answers: Vec<Option<Result<(), SinkError>>> = vec![None; entries];
    let slot = |id: &str| id.parse::<usize>().ok().filter(|index| *index < entries);
    for id in successful {
        if let Some(index) = slot(id) {
            answers[index] = Some(Ok(()));
        }
    }
    for (id, why) in failed {
        if let Some(index) = slot(id) {
            answers[index] = Some(Err(SinkError::new(why)));
        }
    }
    answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| {
                Err(SinkError::new("the service's answer does not mention this entry"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_respect_the_entry_count_and_the_byte_limit() {
        assert_eq!(calls(&[1; 25], 100), [0..10, 10..20, 20..25]);
        assert_eq!(calls(&[40, 40, 40, 10], 100), [0..2, 2..4]);
        assert_eq!(calls(&[100, 100], 100), [0..1, 1..2]);
        assert!(calls(&[], 100).is_empty());
    }

    #[test]
    fn unanswered_entries_are_failures() {
        let answers = answers(3, ["0"].into_iter(), [("2", "throttled".to_owned())].into_iter());
        assert!(answers[0].is_ok());
        assert!(answers[1].as_ref().unwrap_err().to_string().contains("does not mention"));
        assert_eq!(answers[2].as_ref().unwrap_err().to_string(), "throttled");
    }
}
