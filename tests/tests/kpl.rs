//! KPL de-aggregation through the engine: byte-exact with the official `aws-kinesis-agg`
//! library on its own vectors, per-user-record outcomes, and undecodable aggregates kept whole.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::dead_letter::DeadLetterReason;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Outcome, RecordError, RecordMeta};
use serde_json::{json, Value};

/// What the function saw of one user record, in the vectors' own shape.
type Seen = Arc<Mutex<Vec<Value>>>;

#[kinesis_processor(format = bytes, retries = 0)]
async fn record_everything(
    data: Vec<u8>,
    meta: &RecordMeta,
    seen: &Seen,
) -> Result<(), RecordError> {
    seen.lock().unwrap().push(json!({
        "sequenceNumber": meta.sequence_number(),
        "subSequenceNumber": meta.sub_sequence_number(),
        "partitionKey": meta.partition_key(),
        "explicitHashKey": meta.explicit_hash_key(),
        "aggregated": meta.is_aggregated(),
        "data": base64::engine::general_purpose::STANDARD.encode(&data),
    }));
    if data == b"fail" {
        return Err(RecordError::retry("asked to fail"));
    }
    Ok(())
}

fn vectors() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/kpl");
    let mut vectors: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    vectors.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(vectors.len() >= 12, "the vectors are in tests/data/kpl");
    vectors
}

#[tokio::test]
async fn every_vector_deaggregates_exactly_as_the_official_library_does() {
    let mut user_records = 0;
    let mut absent_index = 0;
    for (name, vector) in vectors() {
        let seen = Seen::default();
        let payload = serde_json::to_vec(&vector["event"]).unwrap();
        let report = record_everything().state(seen.clone()).process(payload).await.unwrap();
        assert!(report.response().batch_item_failures.is_empty(), "{name}");
        let seen = seen.lock().unwrap();
        let expected = vector["expected"].as_array().unwrap();
        assert_eq!(seen.len(), expected.len(), "{name}: user record count");
        let without_index = user_records_without_hash_key_index(&vector["event"]);
        for (index, (got, want)) in seen.iter().zip(expected).enumerate() {
            for field in
                ["sequenceNumber", "subSequenceNumber", "partitionKey", "aggregated", "data"]
            {
                assert_eq!(got[field], want[field], "{name}: user record {index}, field {field}");
            }
            if without_index.contains(&index) {
                // The one known difference: a user record put without an explicit hash key
                // has none (as the KCL reads it). The Python library reads the absent index
                // as 0 and reports the first key of the table instead.
                assert_eq!(got["explicitHashKey"], Value::Null, "{name}: user record {index}");
                assert!(want["explicitHashKey"].is_string(), "{name}: user record {index}");
                absent_index += 1;
            } else {
                assert_eq!(
                    got["explicitHashKey"], want["explicitHashKey"],
                    "{name}: user record {index}"
                );
            }
        }
        assert_eq!(report.summary().units, expected.len(), "{name}");
        user_records += expected.len();
    }
    assert!(user_records > 2_500, "the vectors hold thousands of user records: {user_records}");
    assert_eq!(absent_index, 19, "the vectors' user records without an explicit hash key index");
}

/// Positions (among all user records of the event) of the user records that sit in an
/// aggregate with an explicit hash key table but carry no index into it. Read with a
/// protobuf scanner of its own, so the check does not lean on the code under test.
fn user_records_without_hash_key_index(event: &Value) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut position = 0;
    for record in event["Records"].as_array().unwrap() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(record["kinesis"]["data"].as_str().unwrap())
            .unwrap();
        let aggregate = data.len() > 20
            && data.starts_with(&[0xF3, 0x89, 0x9A, 0xC2])
            && md5_digest(&data[4..data.len() - 16]) == data[data.len() - 16..];
        if !aggregate {
            position += 1;
            continue;
        }
        let fields = scan(&data[4..data.len() - 16]);
        let has_table = fields.iter().any(|(number, _)| *number == 2);
        for (_, record) in fields.iter().filter(|(number, _)| *number == 3) {
            let has_index = scan(record).iter().any(|(number, _)| *number == 2);
            if has_table && !has_index {
                positions.push(position);
            }
            position += 1;
        }
    }
    positions
}

/// (field number, payload) of each varint or length-delimited field.
fn scan(mut bytes: &[u8]) -> Vec<(u64, &[u8])> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let (mut value, mut shift) = (0, 0);
        loop {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return value;
            }
        }
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        if key & 7 == 2 {
            let len = varint(&mut bytes) as usize;
            fields.push((key >> 3, &bytes[..len]));
            bytes = &bytes[len..];
        } else {
            varint(&mut bytes);
            fields.push((key >> 3, &[][..]));
        }
    }
    fields
}

fn user<'a>(partition_key: &'a str, data: &'a [u8]) -> UserRecord<'a> {
    UserRecord { partition_key, explicit_hash_key: None, data }
}

#[tokio::test]
async fn a_failed_user_record_reports_its_parent_and_later_user_records_wait() {
    let batch = TestBatch::new()
        .text("before")
        .aggregate(&[user("a", b"ok"), user("b", b"fail"), user("c", b"never")])
        .text("after");
    let parent = batch.sequence_numbers()[1].clone();
    let seen = Seen::default();
    let report = record_everything().state(seen.clone()).process(batch.build()).await.unwrap();

    assert_eq!(report.checkpoint(), Some(parent.as_str()));
    let outcomes: Vec<(Option<u64>, Outcome)> =
        report.records().map(|r| (r.sub_sequence_number(), r.outcome())).collect();
    assert_eq!(
        outcomes,
        [
            (None, Outcome::Succeeded),
            (Some(0), Outcome::Succeeded),
            (Some(1), Outcome::Failed),
            (Some(2), Outcome::NotStarted),
            (None, Outcome::NotStarted),
        ]
    );
    assert_eq!(seen.lock().unwrap().len(), 3, "nothing after the failed user record ran");
    // The parent is delivered again, so its first user record will be processed twice.
    assert!(report.records().nth(1).unwrap().redelivered());
}

#[kinesis_processor(format = text, retries = 0)]
async fn reject_bad(line: String) -> Result<(), RecordError> {
    if line == "bad" {
        return Err(RecordError::reject("bad line"));
    }
    Ok(())
}

#[tokio::test]
async fn a_rejected_user_record_is_dead_lettered_alone_with_its_own_data() {
    let dlq = MemoryDeadLetter::default();
    let batch =
        TestBatch::new().aggregate(&[user("a", b"good"), user("b", b"bad"), user("c", b"good")]);
    let parent = batch.sequence_numbers()[0].clone();
    let report = reject_bad().dead_letter(dlq.clone()).process(batch.build()).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    let letters = dlq.records();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].sequence_number.as_deref(), Some(parent.as_str()));
    assert_eq!(letters[0].sub_sequence_number, Some(1));
    assert_eq!(letters[0].partition_key.as_deref(), Some("b"));
    assert!(letters[0].aggregated);
    assert_eq!(letters[0].data_bytes().unwrap(), b"bad");
}

#[tokio::test]
async fn an_undecodable_aggregate_is_dead_lettered_whole_never_shortened() {
    // Magic, a protobuf body cut short, and an MD5 digest that matches the cut body.
    let good =
        kinesis_processor::testing::aggregate([user("a", b"one"), user("b", b"two")]).unwrap();
    let data = &good[0].data;
    let body = &data[4..data.len() - 16 - 2];
    let mut truncated = data[..4].to_vec();
    truncated.extend_from_slice(body);
    truncated.extend_from_slice(&md5_digest(body));

    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new().text("fine").bytes(&truncated).text("fine too").build();
    let report = reject_bad().dead_letter(dlq.clone()).process(event).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Succeeded,
            Outcome::DeadLettered(DeadLetterReason::DecodeError),
            Outcome::Succeeded
        ]
    );
    let letter = &dlq.records()[0];
    assert!(letter.error.contains("truncated"), "{}", letter.error);
    assert_eq!(letter.data_bytes().unwrap(), truncated, "the whole record, as it came");
}

/// An undecodable aggregate's envelope is sound, so its arrival counts toward the iterator age,
/// in the Lambda loop's summary as in `process`'s report.
#[tokio::test]
async fn an_undecodable_aggregate_still_counts_toward_the_iterator_age() {
    let good = kinesis_processor::testing::aggregate([user("a", b"one")]).unwrap();
    let mut truncated = good[0].data[..good[0].data.len() - 18].to_vec();
    let body = truncated[4..].to_vec();
    truncated.extend_from_slice(&md5_digest(&body));
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let event =
        TestBatch::new().text("fine").bytes(&truncated).arrival(two_hours_ago).text("ok").build();

    let processor = reject_bad().dead_letter(MemoryDeadLetter::default());
    let report = processor.process(event.clone()).await.unwrap();
    let outcome =
        processor.respond(event, "test", std::time::Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        report.records().nth(1).unwrap().outcome(),
        Outcome::DeadLettered(DeadLetterReason::DecodeError)
    );
    for age in [report.summary().iterator_age, outcome.summary().iterator_age] {
        let age = age.expect("an iterator age").as_secs();
        assert!((7200..7260).contains(&age), "{age} s");
    }
}

#[tokio::test]
async fn corrupt_digests_and_bare_magic_are_plain_records() {
    let good = kinesis_processor::testing::aggregate([user("a", b"one")]).unwrap();
    let mut corrupt = good[0].data.clone();
    *corrupt.last_mut().unwrap() ^= 0xff;
    let seen = Seen::default();
    let event = TestBatch::new().bytes(&corrupt).bytes(&[0xF3, 0x89, 0x9A, 0xC2]).build();
    record_everything().state(seen.clone()).process(event).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["aggregated"], false);
    assert_eq!(seen[0]["data"], base64::engine::general_purpose::STANDARD.encode(&corrupt));
    assert_eq!(seen[1]["data"], "84mawg==");
}

/// The base64 forms the runtime accepts for `bytes`: padded, unpadded when that differs,
/// and partly padded when the padding is two `=`.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let padded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut forms = vec![padded.clone()];
    if padded.ends_with('=') {
        forms.push(padded.trim_end_matches('=').to_owned());
    }
    if padded.ends_with("==") {
        forms.push(padded[..padded.len() - 1].to_owned());
    }
    forms
}

#[tokio::test]
async fn aggregates_are_read_alike_in_every_accepted_base64_form() {
    // An aggregate whose base64 takes two `=`, so that it has all three forms.
    let good = (0..3)
        .map(|n| {
            let filler = &b"xx"[..n];
            let users = [user("a", b"good"), user("b", b"bad"), user("c", filler)];
            kinesis_processor::testing::aggregate(users).unwrap().remove(0).data
        })
        .find(|data| data.len() % 3 == 1)
        .unwrap();
    let mut corrupt_digest = good.clone();
    *corrupt_digest.last_mut().unwrap() ^= 0xff;
    let body = &good[4..good.len() - 16 - 2];
    let truncated = [&good[..4], body, &md5_digest(body)].concat();

    let mut batch = TestBatch::new();
    let mut sent = Vec::new();
    for (kind, bytes) in [("good", &good), ("corrupt", &corrupt_digest), ("cut", &truncated)] {
        for text in base64_forms(bytes) {
            batch = batch.base64(&text);
            sent.push((kind, text));
        }
    }
    assert_eq!(sent.iter().filter(|(kind, _)| *kind == "good").count(), 3, "three forms");
    let sequence_numbers = batch.sequence_numbers().to_vec();
    let dlq = MemoryDeadLetter::default();
    reject_bad().dead_letter(dlq.clone()).process(batch.build()).await.unwrap();

    let letters = dlq.records();
    assert_eq!(letters.len(), sent.len(), "one dead letter for each record sent");
    for ((kind, text), sequence_number) in sent.iter().zip(&sequence_numbers) {
        let letter = letters
            .iter()
            .find(|letter| letter.sequence_number.as_ref() == Some(sequence_number))
            .unwrap_or_else(|| panic!("a dead letter for the {kind} record sent as {text}"));
        match *kind {
            // De-aggregated: only the rejected user record, with its own data.
            "good" => {
                assert_eq!(letter.sub_sequence_number, Some(1), "{text}");
                assert_eq!(letter.data_bytes().unwrap(), b"bad", "{text}");
            }
            // A plain record after all (its bytes are not text), or an undecodable aggregate:
            // dead-lettered whole, with the data exactly as it came.
            _ => {
                assert_eq!(letter.reason, DeadLetterReason::DecodeError, "{kind} {text}");
                assert_eq!(letter.data.as_deref(), Some(text.as_str()), "{kind}");
                assert_eq!(letter.sub_sequence_number, None, "{kind} {text}");
            }
        }
        let truncation_named = letter.error.contains("truncated");
        assert_eq!(truncation_named, *kind == "cut", "{kind} {text}: {}", letter.error);
    }
}

fn md5_digest(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(bytes).into()
}
