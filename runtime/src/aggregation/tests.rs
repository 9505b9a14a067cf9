use super::producer::*;
use super::*;

fn record<'a>(
    partition_key: &'a str,
    explicit_hash_key: Option<&'a str>,
    data: &'a [u8],
) -> UserRecord<'a> {
    UserRecord { partition_key, explicit_hash_key, data }
}

/// An aggregate around an arbitrary protobuf body, with a valid digest.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(body);
    data.extend_from_slice(&Md5::digest(body));
    data
}

fn body_of(aggregate: &[u8]) -> &[u8] {
    &aggregate[MAGIC.len()..aggregate.len() - DIGEST_SIZE]
}

#[test]
fn round_trip_keeps_keys_order_and_data() {
    let records = [
        record("a", None, b"one"),
        record("b", Some("170141183460469231731687303715884105728"), b""),
        record("a", None, &[0, 255, 7]),
        record("c", Some("1"), b"four"),
    ];
    let aggregates = aggregate(records).unwrap();
    assert_eq!(aggregates.len(), 1);
    assert_eq!(aggregates[0].user_records, 4);
    assert_eq!(deaggregate(&aggregates[0].data), Ok(Deaggregated::Aggregate(records.to_vec())));
}

#[test]
fn the_container_keys_are_the_first_records() {
    let with_ehk =
        aggregate([record("first", Some("99"), b"x"), record("second", None, b"y")]).unwrap();
    assert_eq!(with_ehk[0].partition_key, "first");
    assert_eq!(with_ehk[0].explicit_hash_key, "99");
    let without = aggregate([record("first", None, b"x")]).unwrap();
    assert_eq!(without[0].explicit_hash_key, hash_key_of("first").to_string());
}

#[test]
fn the_hash_key_of_a_partition_key_is_its_md5_as_an_integer() {
    // MD5("") = d41d8cd98f00b204e9800998ecf8427e
    assert_eq!(
        hash_key_of(""),
        u128::from_str_radix("d41d8cd98f00b204e9800998ecf8427e", 16).unwrap()
    );
}

#[test]
fn aggregates_stay_within_the_record_limit_counting_the_partition_key() {
    let data = vec![7u8; 500];
    let key = "k".repeat(200);
    let records = (0..5_000).map(|_| record(&key, None, &data));
    let aggregates = aggregate(records).unwrap();
    assert!(aggregates.len() > 1);
    for aggregate in &aggregates {
        let size = aggregate.data.len() + aggregate.partition_key.len();
        assert!(size <= MAX_RECORD_SIZE, "{size}");
        // Full: one more record would not have fitted.
        assert!(size + 500 + 10 > MAX_RECORD_SIZE || aggregate == aggregates.last().unwrap());
    }
    assert_eq!(aggregates.iter().map(|a| a.user_records).sum::<usize>(), 5_000);
}

#[test]
fn the_size_estimate_is_exact() {
    let mut aggregator = Aggregator::with_max_size(usize::MAX);
    let records =
        [record("a", None, b"x"), record("b", Some("5"), &[1; 300]), record("a", Some("5"), b"")];
    for r in records {
        let predicted = aggregator.size_with(&r, "a");
        aggregator.push(r);
        let finished = aggregator.clone().finish().unwrap();
        assert_eq!(finished.data.len() + finished.partition_key.len(), predicted);
    }
}

#[test]
fn a_record_too_large_for_any_aggregate_is_an_error() {
    let data = vec![0u8; MAX_RECORD_SIZE];
    let err = aggregate([record("k", None, &data)]).unwrap_err();
    assert_eq!(err.max, MAX_RECORD_SIZE);
    assert!(err.size > MAX_RECORD_SIZE);
}

#[test]
fn what_is_not_an_aggregate_is_plain() {
    let good = aggregate([record("k", None, b"data")]).unwrap().remove(0).data;
    let mut bad_digest = good.clone();
    *bad_digest.last_mut().unwrap() ^= 1;
    assert_eq!(deaggregate(&bad_digest), Ok(Deaggregated::Plain), "digest mismatch");
    assert_eq!(deaggregate(&MAGIC), Ok(Deaggregated::Plain), "only the magic");
    let mut short = MAGIC.to_vec();
    short.extend_from_slice(&[0; DIGEST_SIZE]);
    assert_eq!(deaggregate(&short), Ok(Deaggregated::Plain), "a body no longer than the digest");
    assert_eq!(deaggregate(b""), Ok(Deaggregated::Plain));
    // A valid digest over bytes that are not protobuf (wire type 7).
    assert_eq!(deaggregate(&sealed(&[0x0f, 0x01, 0x02])), Ok(Deaggregated::Plain), "not protobuf");
}

#[test]
fn a_truncated_aggregate_with_a_valid_digest_is_broken() {
    let good = aggregate([record("k", None, b"some data"), record("j", None, b"more")])
        .unwrap()
        .remove(0)
        .data;
    let body = body_of(&good);
    let truncated = sealed(&body[..body.len() - 3]);
    let err = deaggregate(&truncated).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_key_index_outside_its_table_is_broken() {
    let mut inner = Vec::new();
    wire::put_uint(&mut inner, 1, 3);
    wire::put_bytes(&mut inner, 3, b"x");
    let mut body = Vec::new();
    wire::put_bytes(&mut body, 1, b"only-key");
    wire::put_bytes(&mut body, 3, &inner);
    let err = deaggregate(&sealed(&body)).unwrap_err();
    assert!(err.to_string().contains("points at partition key 3, outside its table of 1"), "{err}");

    let mut inner = Vec::new();
    wire::put_uint(&mut inner, 1, 0);
    wire::put_uint(&mut inner, 2, 0);
    wire::put_bytes(&mut inner, 3, b"x");
    let mut body = Vec::new();
    wire::put_bytes(&mut body, 1, b"k");
    wire::put_bytes(&mut body, 3, &inner);
    let err = deaggregate(&sealed(&body)).unwrap_err();
    assert!(err.to_string().contains("explicit hash key 0, outside its table of 0"), "{err}");
}

#[test]
fn missing_required_fields_and_empty_aggregates_are_broken() {
    let mut inner = Vec::new();
    wire::put_bytes(&mut inner, 3, b"x");
    let mut body = Vec::new();
    wire::put_bytes(&mut body, 1, b"k");
    wire::put_bytes(&mut body, 3, &inner);
    assert!(deaggregate(&sealed(&body))
        .unwrap_err()
        .to_string()
        .contains("no partition key index"));

    let mut body = Vec::new();
    wire::put_bytes(&mut body, 1, b"k");
    assert!(deaggregate(&sealed(&body)).unwrap_err().to_string().contains("no user records"));
}

#[test]
fn fields_in_any_order_and_unknown_fields_are_read() {
    let mut inner = Vec::new();
    wire::put_bytes(&mut inner, 3, b"payload");
    wire::put_bytes(&mut inner, 4, b"\x0a\x01t"); // a tag, skipped
    wire::put_uint(&mut inner, 1, 0);
    let mut body = Vec::new();
    wire::put_bytes(&mut body, 3, &inner);
    wire::put_uint(&mut body, 9, 77); // unknown
    wire::put_bytes(&mut body, 1, b"late-key");
    let data = sealed(&body);
    let Ok(Deaggregated::Aggregate(records)) = deaggregate(&data) else { panic!("an aggregate") };
    assert_eq!(records, [record("late-key", None, b"payload")]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn user_records() -> impl Strategy<Value = Vec<(String, Option<String>, Vec<u8>)>> {
        let key = "[a-z0-9-]{1,24}";
        let ehk = proptest::option::of("[0-9]{1,39}");
        let data = proptest::collection::vec(any::<u8>(), 0..600);
        proptest::collection::vec((key, ehk, data), 1..200)
    }

    proptest! {
        #[test]
        fn aggregate_then_deaggregate_is_the_identity(records in user_records()) {
            let input: Vec<UserRecord<'_>> = records
                .iter()
                .map(|(pk, ehk, data)| record(pk, ehk.as_deref(), data))
                .collect();
            let aggregates = aggregate(input.iter().copied()).unwrap();
            let mut output = Vec::new();
            for aggregate in &aggregates {
                match deaggregate(&aggregate.data) {
                    Ok(Deaggregated::Aggregate(records)) => output.extend(records),
                    other => prop_assert!(false, "not an aggregate: {:?}", other),
                }
            }
            prop_assert_eq!(output, input);
        }

        #[test]
        fn small_limits_split_without_losing_or_reordering(records in user_records(), limit in 1000usize..4000) {
            let input: Vec<UserRecord<'_>> = records
                .iter()
                .map(|(pk, ehk, data)| record(pk, ehk.as_deref(), data))
                .collect();
            let mut aggregator = Aggregator::with_max_size(limit);
            let mut aggregates = Vec::new();
            for record in &input {
                aggregates.extend(aggregator.add(*record).unwrap());
            }
            aggregates.extend(aggregator.finish());
            let mut output = Vec::new();
            for aggregate in &aggregates {
                prop_assert!(aggregate.data.len() + aggregate.partition_key.len() <= limit);
                let Ok(Deaggregated::Aggregate(records)) = deaggregate(&aggregate.data) else {
                    return Err(TestCaseError::fail("not an aggregate"));
                };
                output.extend(records);
            }
            prop_assert_eq!(output, input);
        }

        #[test]
        fn deaggregate_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = deaggregate(&data);
            let _ = deaggregate(&sealed(&data));
        }
    }
}
