//! KPL aggregation cross-checked in both directions with the official `aws-kinesis-agg`
//! Python library, on thousands of generated user records (random keys, explicit hash
//! keys, empty and binary data, records up to near the 1 MiB limit).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::aggregate;
use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde_json::{json, Value};
use support::{python_with_kinesis_agg, unavailable, workspace};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn crosscheck(python: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(python)
        .arg(workspace().join("scripts/kpl_crosscheck.py"))
        .args(args)
        .output()
        .expect("the cross-check script runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kp-{name}-{}.json", std::process::id()))
}

type Seen = Arc<Mutex<Vec<Value>>>;

#[kinesis_processor(format = bytes, retries = 0)]
async fn collect(data: Vec<u8>, meta: &RecordMeta, seen: &Seen) -> Result<(), RecordError> {
    seen.lock().unwrap().push(json!({
        "partitionKey": meta.partition_key(),
        "explicitHashKey": meta.explicit_hash_key(),
        "data": BASE64.encode(&data),
    }));
    Ok(())
}

#[tokio::test]
#[cfg_attr(
    not(services),
    ignore = "needs Python with aws-kinesis-agg: ./scripts/test-all installs it"
)]
async fn aggregates_made_by_the_python_library_deaggregate_identically_here() {
    let Some(python) = python_with_kinesis_agg() else {
        unavailable(
            "python_aggregates_deaggregate_here",
            "python3 with aws-kinesis-agg is missing",
        );
    };
    let file = temp_file("python-made");
    crosscheck(
        &python,
        &["make-event", "--seed", "7", "--count", "5000", "--out", file.to_str().unwrap()],
    );
    let document: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    std::fs::remove_file(&file).unwrap();

    let seen = Seen::default();
    let payload = serde_json::to_vec(&document["event"]).unwrap();
    let report = collect().state(seen.clone()).process(payload).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    let seen = seen.lock().unwrap();
    let records = document["records"].as_array().unwrap();
    assert_eq!(seen.len(), records.len());
    assert!(records.len() >= 5000);
    for (index, (got, put)) in seen.iter().zip(records).enumerate() {
        assert_eq!(got, put, "user record {index}");
    }
    assert!(report.summary().records < report.summary().units, "aggregated");
}

/// Random user records: a few dozen keys, 30% with explicit hash keys, 5% empty, and four
/// large ones.
fn random_records(seed: u64, count: usize) -> Vec<(String, Option<String>, Vec<u8>)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let keys: Vec<String> =
        (0..40).map(|n| format!("user-{n}")).chain((0..3).map(|n| format!("ключ-{n}"))).collect();
    let large: Vec<(usize, usize)> = [200_000, 400_000, 700_000, 1_000_000]
        .into_iter()
        .map(|size| (rng.usize(..count), size))
        .collect();
    (0..count)
        .map(|index| {
            let size = match large.iter().find(|(at, _)| *at == index) {
                Some((_, size)) => *size,
                None if rng.u8(..100) < 5 => 0,
                None => rng.usize(1..=2_000),
            };
            let ehk = (rng.u8(..100) < 30).then(|| rng.u128(..).to_string());
            let data = (0..size).map(|_| rng.u8(..)).collect();
            (keys[rng.usize(..keys.len())].clone(), ehk, data)
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(services),
    ignore = "needs Python with aws-kinesis-agg: ./scripts/test-all installs it"
)]
fn aggregates_made_here_deaggregate_identically_with_the_python_library() {
    let Some(python) = python_with_kinesis_agg() else {
        unavailable("our_aggregates_deaggregate_there", "python3 with aws-kinesis-agg is missing");
    };
    let records = random_records(11, 5000);
    let users: Vec<UserRecord<'_>> = records
        .iter()
        .map(|(pk, ehk, data)| UserRecord {
            partition_key: pk,
            explicit_hash_key: ehk.as_deref(),
            data,
        })
        .collect();
    let aggregates = aggregate(users.iter().copied()).unwrap();
    assert!(aggregates.len() > 4, "several full aggregates");
    let mut batch = TestBatch::new();
    for aggregate in &aggregates {
        batch = batch.bytes(&aggregate.data).partition_key(&aggregate.partition_key);
    }
    let event: Value = serde_json::from_slice(&batch.build()).unwrap();
    let file = temp_file("rust-made");
    std::fs::write(&file, serde_json::to_vec(&json!({ "event": event })).unwrap()).unwrap();
    let output = crosscheck(&python, &["deaggregate", "--input", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    let theirs: Vec<Value> = serde_json::from_slice(&output).unwrap();

    assert_eq!(theirs.len(), users.len());
    let mut position = 0;
    for aggregate in &aggregates {
        let members = &users[position..position + aggregate.user_records];
        // The Python library reads an absent explicit hash key index as 0: a user record
        // without a key gets the aggregate's first key, when it has one.
        let first_key = members.iter().find_map(|user| user.explicit_hash_key);
        for (sub, user) in members.iter().enumerate() {
            let got = &theirs[position + sub];
            assert_eq!(got["subSequenceNumber"], sub, "user record {}", position + sub);
            assert_eq!(got["partitionKey"], user.partition_key, "user record {}", position + sub);
            assert_eq!(got["data"], BASE64.encode(user.data), "user record {}", position + sub);
            let expected_key = user.explicit_hash_key.or(first_key);
            assert_eq!(
                got["explicitHashKey"].as_str(),
                expected_key,
                "user record {}",
                position + sub
            );
        }
        position += aggregate.user_records;
    }
}
