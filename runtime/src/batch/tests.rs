use super::record::{UndecodableRecord, ValidRecord};
use super::scan::first_colon;
use super::*;
use proptest::prelude::{any, Just};

fn record(kinesis: &str) -> String {
    format!(
        r#"{{"Records":[{{"kinesis":{kinesis},"eventSource":"aws:kinesis",
        "eventID":"shardId-000000000006:1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"}}]}}"#
    )
}

const GOOD: &str = r#"{"sequenceNumber":"1","partitionKey":"k","data":"aGk=","approximateArrivalTimestamp":1607497475.5}"#;

/// Parses a payload, keeping every record the sink is handed, in order.
fn parse_all<'b>(payload: &'b [u8], arena: &'b Bump) -> Result<(Parsed, Vec<Checked<'b>>), Error> {
    let mut records = Vec::new();
    let parsed = parse(payload, arena, &mut |index, record| {
        assert_eq!(index, records.len(), "records are handed over in order");
        records.push(record);
    })?;
    assert_eq!(parsed.records, records.len());
    Ok((parsed, records))
}

fn valid<'r, 'b>(record: &'r Checked<'b>) -> &'r ValidRecord<'b> {
    match record {
        Checked::Valid(checked) => checked,
        Checked::Undecodable(record) => panic!("an undecodable record: {}", record.decode_error),
    }
}

fn undecodable<'r, 'b>(record: &'r Checked<'b>) -> &'r UndecodableRecord<'b> {
    match record {
        Checked::Undecodable(record) => record,
        Checked::Valid(checked) => panic!("a valid record: {checked:?}"),
    }
}

#[test]
fn the_oldest_arrival_is_that_of_the_earliest_valid_record() {
    let record = |arrival: &str, data: &str| {
        format!(
            r#"{{"kinesis":{{"sequenceNumber":"1","partitionKey":"k",{data}
            "approximateArrivalTimestamp":{arrival}}},"eventSource":"aws:kinesis",
            "eventID":"shardId-000000000006:1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"}}"#
        )
    };
    let payload = format!(
        r#"{{"Records":[{},{},{},{}]}}"#,
        record("1607497475.5", r#""data":"aGk=","#),
        record("1607490000.25", r#""data":"aGk=","#),
        // Older still, but without data: undecodable, so it is not counted.
        record("1500000000", ""),
        record("1607499999", r#""data":"aGk=","#),
    );
    let arena = Bump::new();
    let (parsed, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(records.iter().filter(|r| matches!(r, Checked::Valid(_))).count(), 3);
    assert_eq!(parsed.oldest_arrival, Some(1_607_490_000_250));

    let none_valid = format!(r#"{{"Records":[{}]}}"#, record("1500000000", ""));
    let (parsed, _) = parse_all(none_valid.as_bytes(), &arena).unwrap();
    assert_eq!(parsed.oldest_arrival, None);
}

#[test]
fn a_good_record_checks_out_with_every_field() {
    let (payload, arena) = (record(GOOD), Bump::new());
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    let checked = valid(&records[0]);
    assert_eq!(checked.sequence_number, "1");
    assert_eq!(checked.partition_key, "k");
    assert_eq!(checked.data, "aGk=");
    assert_eq!(checked.shard_id, Some("shardId-000000000006"));
    assert_eq!(checked.explicit_hash_key, None);
    assert_eq!(checked.event_source_arn, "arn:aws:kinesis:us-east-1:1:stream/s");
    assert!(!checked.may_be_aggregate);
}

#[test]
fn fractional_arrival_seconds_are_milliseconds() {
    let (payload, arena) = (record(GOOD), Bump::new());
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(valid(&records[0]).arrival_millis, 1_607_497_475_500);
}

proptest::proptest! {
    #[test]
    fn the_first_colon_is_found_wherever_it_is(bytes in proptest::collection::vec(
        proptest::prop_oneof![Just(b':'), Just(b';'), any::<u8>()], 0..40)) {
        let expected = bytes.iter().position(|&byte| byte == b':');
        proptest::prop_assert_eq!(first_colon(&bytes), expected);
    }
}

#[test]
fn strings_are_borrowed_unless_escaped() {
    let payload = record(
        r#"{"sequenceNumber":"1","partitionKey":"a\/b","data":"aGk=","approximateArrivalTimestamp":1}"#,
    );
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    let checked = valid(&records[0]);
    let in_payload = |text: &str| payload.as_bytes().as_ptr_range().contains(&text.as_ptr());
    assert!(in_payload(checked.data) && in_payload(checked.shard_id.unwrap()));
    assert_eq!(checked.partition_key, "a/b");
    assert!(!in_payload(checked.partition_key), "the unescaped key is in the arena");
    assert!(arena.allocated_bytes() > 0);

    // Nothing is copied when nothing is escaped.
    let (payload, arena) = (record(GOOD), Bump::new());
    parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(arena.allocated_bytes(), 0);
}

#[test]
fn each_wrong_field_fails_its_record_with_a_message_naming_it() {
    let cases = [
        (
            r#"{"partitionKey":"k","data":"","approximateArrivalTimestamp":1}"#,
            "`kinesis.sequenceNumber` is missing",
        ),
        (
            r#"{"sequenceNumber":5,"partitionKey":"k","data":"","approximateArrivalTimestamp":1}"#,
            "`kinesis.sequenceNumber` is a number, expected a string",
        ),
        (
            r#"{"sequenceNumber":"x1","partitionKey":"k","data":"","approximateArrivalTimestamp":1}"#,
            "is not a decimal number",
        ),
        (
            r#"{"sequenceNumber":"1","partitionKey":[],"data":"","approximateArrivalTimestamp":1}"#,
            "`kinesis.partitionKey` is an array",
        ),
        (
            r#"{"sequenceNumber":"1","partitionKey":"k","data":null,"approximateArrivalTimestamp":1}"#,
            "`kinesis.data` is null",
        ),
        (
            r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":"1"}"#,
            "is a string, expected a number",
        ),
        (
            r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":-5}"#,
            "is not a time since 1970",
        ),
        (
            r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":1,"encryptionType":"ROT13"}"#,
            "unknown `kinesis.encryptionType` \"ROT13\"",
        ),
        (
            r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":1,"explicitHashKey":{}}"#,
            "`kinesis.explicitHashKey` is an object",
        ),
        ("true", "`kinesis` is a boolean"),
        ("null", "`kinesis` is null"),
    ];
    for (kinesis, expected) in cases {
        let (payload, arena) = (record(kinesis), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).expect(kinesis);
        let decode_error = &undecodable(&records[0]).decode_error;
        assert!(decode_error.contains(expected), "{kinesis}: {decode_error}");
    }
}

#[test]
fn an_event_id_that_names_no_shard_fails_its_record() {
    for (event_id, expected) in [
        (r#""eventID":7,"#, "`eventID` is a number, expected a string"),
        (r#""eventID":"no-colon","#, "`eventID` \"no-colon\" does not name a shard"),
        (r#""eventID":":1","#, "`eventID` \":1\" does not name a shard"),
    ] {
        let payload = record(GOOD).replace(r#""eventID":"shardId-000000000006:1","#, event_id);
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        let decode_error = &undecodable(&records[0]).decode_error;
        assert!(decode_error.contains(expected), "{event_id}: {decode_error}");
    }
}

#[test]
fn a_record_without_an_event_id_is_valid_with_no_shard() {
    let payload = record(GOOD).replace(r#""eventID":"shardId-000000000006:1","#, "");
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(valid(&records[0]).shard_id, None);
}

#[test]
fn an_event_id_inside_kinesis_names_the_shard() {
    // As the KPL aggregation library's sample records carry it.
    let inner = GOOD
        .replace(r#""sequenceNumber""#, r#""eventID":"shardId-000000000002:1","sequenceNumber""#);
    let payload = record(&inner).replace(r#""eventID":"shardId-000000000006:1","#, "");
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(valid(&records[0]).shard_id, Some("shardId-000000000002"));
}

#[test]
fn a_record_without_kinesis_takes_its_sequence_number_from_its_event_id() {
    let payload = r#"{"Records":[{"eventID":"shardId-000000000006:49590338271490256608559692538361571095921575989136588898"}]}"#;
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    let undecodable_record = undecodable(&records[0]);
    assert_eq!(undecodable_record.decode_error, "`kinesis` is missing");
    assert_eq!(
        undecodable_record.sequence_number,
        Some("49590338271490256608559692538361571095921575989136588898")
    );
    // With `kinesis` present, only its own sequence number counts.
    let payload = r#"{"Records":[{"kinesis":{},"eventID":"shardId-000000000006:42"}]}"#;
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(super::tests::undecodable(&records[0]).sequence_number, None);
}

#[test]
fn a_broken_record_keeps_each_usable_field() {
    let kinesis = r#"{"sequenceNumber":"12","partitionKey":"\u006b","data":"aGk=","approximateArrivalTimestamp":1,"encryptionType":"ROT13"}"#;
    let (payload, arena) = (record(kinesis), Bump::new());
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    let kept = undecodable(&records[0]);
    assert!(kept.decode_error.contains("encryptionType"), "{}", kept.decode_error);
    assert_eq!(kept.sequence_number, Some("12"));
    assert_eq!(kept.partition_key, Some("k"));
    assert_eq!(kept.data, Some("aGk="));
    assert_eq!(kept.shard_id, Some("shardId-000000000006"));
    assert_eq!(kept.arrival_millis, Some(1000));

    // A sequence number that is not one is not kept: it must not name a checkpoint.
    let (payload, arena) = (record(&kinesis.replace("\"12\"", "\"1x\"")), Bump::new());
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(undecodable(&records[0]).sequence_number, None);
}

#[test]
fn kms_and_none_encryption_types_are_accepted() {
    for kind in ["\"NONE\"", "\"KMS\"", "null"] {
        let kinesis = GOOD.replace('}', &format!(",\"encryptionType\":{kind}}}"));
        let (payload, arena) = (record(&kinesis), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        valid(&records[0]);
    }
}

#[test]
fn a_record_that_is_not_an_object_fails_alone() {
    let payload = format!(r#"{{"Records":[7,{}]}}"#, &record(GOOD)[12..record(GOOD).len() - 2]);
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(records.len(), 2);
    assert!(undecodable(&records[0]).decode_error.contains("is a number"));
    valid(&records[1]);
}

#[test]
fn a_record_after_one_that_is_not_an_object_starts_afresh() {
    // The scratch record is reused: nothing of the element before may leak into it.
    let one = &record(GOOD)[12..record(GOOD).len() - 2];
    let payload = format!(r#"{{"Records":[{one},[1],{{"kinesis":{{}}}}]}}"#);
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    valid(&records[0]);
    assert_eq!(undecodable(&records[1]).decode_error, "the record is an array, expected an object");
    let last = undecodable(&records[2]);
    assert_eq!(last.decode_error, "`kinesis.sequenceNumber` is missing");
    assert_eq!((last.partition_key, last.shard_id, last.event_source_arn), (None, None, None));
}

#[test]
fn payloads_that_are_not_kinesis_batches_are_invocation_errors() {
    let cases = [
        (&b"not json"[..], "not valid JSON"),
        (b"[1,2]", "found an array"),
        (b"{}", "no `Records` array"),
        (b"{\"Records\":{}}", "`Records` is an object"),
        (
            b"{\"Records\":[{\"eventSource\":\"aws:sqs\",\"body\":\"x\"}]}",
            "record 0 comes from `aws:sqs`",
        ),
        (b"{\"Records\":[{\"EventSource\":\"aws:sns\"}]}", "`aws:sns`"),
        (b"{\"Records\":[{},{\"eventSource\":\"aws:s3\"}]}", "record 1 comes from `aws:s3`"),
        (b"{\"Records\":[{}]} x", "not valid JSON"),
        (b"{\"Records\":[{}],\"Records\":[{}]}", "more than one `Records` member"),
        (b"{\"Records\":[{}],\"Records\":7}", "more than one `Records` member"),
        (b"{\"Records\":7,\"Records\":[{}]}", "more than one `Records` member"),
    ];
    for (payload, expected) in cases {
        let err = parse_all(payload, &Bump::new()).err().expect("an error");
        assert!(matches!(err, Error::InvalidEvent(_)));
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn a_payload_that_is_not_utf8_is_an_invocation_error_with_its_position() {
    let mut payload = record(GOOD).into_bytes();
    let at = payload.iter().position(|b| *b == b'k').unwrap();
    payload[at] = 0xff;
    let err = parse_all(&payload, &Bump::new()).err().expect("an error");
    assert!(matches!(err, Error::InvalidEvent(_)));
    assert!(err.to_string().contains("not valid JSON") && err.to_string().contains("line 1"));
}

#[test]
fn escaped_strings_are_unescaped_when_parsed_from_text() {
    let payload = record(
        r#"{"sequenceNumber":"1","partitionKey":"\u00e9t\u00e9","data":"aGk=","approximateArrivalTimestamp":1}"#,
    );
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(valid(&records[0]).partition_key, "été");
}

#[test]
fn an_escaped_event_id_still_names_its_shard() {
    let payload = record(GOOD).replace("shardId-", "shardId\\u002d");
    assert!(payload.contains("\\u002d"));
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    assert_eq!(valid(&records[0]).shard_id, Some("shardId-000000000006"));
}

#[test]
fn aggregates_are_spotted_by_their_base64_magic() {
    let aggregate = GOOD.replace("aGk=", "84mawgo=");
    for (kinesis, expected) in [(GOOD, false), (&*aggregate, true)] {
        let (payload, arena) = (record(kinesis), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(valid(&records[0]).may_be_aggregate, expected);
    }
}

#[test]
fn a_repeated_kinesis_member_replaces_the_earlier_one_whole() {
    let kinesis = format!(r#"{GOOD},"kinesis":{{"partitionKey":"later"}}"#);
    let (payload, arena) = (record(&kinesis), Bump::new());
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    let last = undecodable(&records[0]);
    assert_eq!(last.decode_error, "`kinesis.sequenceNumber` is missing");
    assert_eq!(last.partition_key, Some("later"));
}

#[test]
fn records_of_one_shard_share_one_shard_id_slice() {
    let one = &record(GOOD)[12..record(GOOD).len() - 2];
    let other = one.replace("shardId-000000000006", "shardId-000000000007");
    let payload = format!(r#"{{"Records":[{one},{one},{other},{one}]}}"#);
    let arena = Bump::new();
    let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
    let shards: Vec<&str> = records.iter().map(|r| valid(r).shard_id.unwrap()).collect();
    assert_eq!(
        shards,
        [
            "shardId-000000000006",
            "shardId-000000000006",
            "shardId-000000000007",
            "shardId-000000000006"
        ]
    );
    assert!(std::ptr::eq(shards[0], shards[1]), "equal shard ids are one slice");
}

#[test]
fn an_empty_records_array_is_an_empty_batch() {
    let arena = Bump::new();
    let (parsed, records) = parse_all(b"{\"Records\":[]}", &arena).unwrap();
    assert!(records.is_empty());
    assert_eq!(parsed.records, 0);
}
