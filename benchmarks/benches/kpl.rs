//! De-aggregation throughput on a realistic 1 MiB aggregate of ~500-byte records: the
//! runtime's borrowing hand decoder against `prost` (owned fields), each with the MD5
//! check, in the same run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kinesis_processor::aggregation::{deaggregate, Deaggregated};
use kinesis_processor_benchmarks::full_aggregate;
use md5::{Digest, Md5};

/// The aggregation format's messages, for prost.
mod messages {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AggregatedRecord {
        #[prost(string, repeated, tag = "1")]
        pub partition_key_table: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub explicit_hash_key_table: Vec<String>,
        #[prost(message, repeated, tag = "3")]
        pub records: Vec<Record>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        #[prost(uint64, required, tag = "1")]
        pub partition_key_index: u64,
        #[prost(uint64, optional, tag = "2")]
        pub explicit_hash_key_index: Option<u64>,
        #[prost(bytes = "vec", required, tag = "3")]
        pub data: Vec<u8>,
    }
}

fn with_prost(data: &[u8]) -> usize {
    let body = &data[4..data.len() - 16];
    assert_eq!(Md5::digest(body).as_slice(), &data[data.len() - 16..]);
    let message = <messages::AggregatedRecord as prost::Message>::decode(body).expect("protobuf");
    message
        .records
        .iter()
        .map(|record| {
            let key = &message.partition_key_table[record.partition_key_index as usize];
            key.len() + record.data.len()
        })
        .sum()
}

fn with_runtime(data: &[u8]) -> usize {
    let Ok(Deaggregated::Aggregate(records)) = deaggregate(data) else { panic!("an aggregate") };
    records.iter().map(|record| record.partition_key.len() + record.data.len()).sum()
}

fn deaggregation(c: &mut Criterion) {
    let (aggregate, user_records) = full_aggregate();
    assert_eq!(with_runtime(&aggregate), with_prost(&aggregate), "both read the same records");
    let mut group = c.benchmark_group(format!("deaggregate 1 MiB, {user_records} records"));
    group.throughput(Throughput::Bytes(aggregate.len() as u64));
    group.bench_function("kinesis-processor", |b| {
        b.iter(|| with_runtime(std::hint::black_box(&aggregate)))
    });
    group.bench_function("prost", |b| b.iter(|| with_prost(std::hint::black_box(&aggregate))));
    group.bench_function("md5 alone", |b| {
        b.iter(|| Md5::digest(std::hint::black_box(&aggregate[4..])))
    });
    group.finish();
}

criterion_group!(benches, deaggregation);
criterion_main!(benches);
