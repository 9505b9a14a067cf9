//! Every accepted signature form compiles and yields a processor.
use kinesis_processor::decode::Decode;
use kinesis_processor::{kinesis_processor, BoxError, RecordError, RecordMeta};

#[derive(serde::Deserialize)]
pub struct Click {
    pub url: String,
}

pub struct Db;

#[derive(Debug)]
pub struct Failed;
impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}
impl std::error::Error for Failed {}

#[kinesis_processor]
async fn payload_only(click: Click) -> Result<(), RecordError> {
    let _ = click.url;
    Ok(())
}

#[kinesis_processor]
async fn with_meta(click: Click, meta: &RecordMeta) -> Result<(), RecordError> {
    let _ = (click.url, meta.sequence_number());
    Ok(())
}

#[kinesis_processor]
async fn with_explicit_meta_lifetime(click: Click, meta: &RecordMeta<'_>) -> Result<(), RecordError> {
    let _ = (click.url, meta.partition_key());
    Ok(())
}

#[kinesis_processor]
async fn with_state(click: Click, db: &Db) -> Result<(), RecordError> {
    let _ = (click.url, db);
    Ok(())
}

#[kinesis_processor]
async fn with_meta_and_state(click: Click, meta: &RecordMeta, db: &Db) -> Result<(), RecordError> {
    let _ = (click.url, meta.shard_id(), db);
    Ok(())
}

#[kinesis_processor]
async fn with_state_and_meta(click: Click, db: &Db, meta: &kinesis_processor::RecordMeta) -> Result<(), RecordError> {
    let _ = (click.url, meta.shard_id(), db);
    Ok(())
}

#[kinesis_processor(format = text)]
fn plain_fn(line: String, meta: &RecordMeta) -> Result<(), RecordError> {
    let _ = (line, meta);
    Ok(())
}

/// A std error converts into a retryable RecordError.
#[kinesis_processor(format = bytes)]
async fn std_error(data: Vec<u8>) -> Result<(), Failed> {
    if data.is_empty() {
        return Err(Failed);
    }
    Ok(())
}

#[kinesis_processor(format = bytes)]
async fn shared_bytes(data: bytes::Bytes) -> Result<(), std::io::Error> {
    let _ = data;
    Ok(())
}

pub struct Csv;
impl Decode<Vec<String>> for Csv {
    fn decode(data: &[u8]) -> Result<Vec<String>, BoxError> {
        Ok(std::str::from_utf8(data)?.split(',').map(str::to_owned).collect())
    }
}

#[kinesis_processor(format = Csv, retries = 0)]
async fn custom_format(fields: Vec<String>) -> Result<(), RecordError> {
    let _ = fields;
    Ok(())
}

#[kinesis_processor(format = self::Csv)]
async fn custom_format_path(fields: Vec<String>) -> Result<(), RecordError> {
    let _ = fields;
    Ok(())
}

#[kinesis_processor(format = text, max_record_age = "1h 30m", on_retries_exhausted = dead_letter)]
async fn with_age_and_exhaustion(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

#[kinesis_processor(format = text, on_retries_exhausted = report, concurrency = 16, deadline_margin = "1500ms")]
async fn reporting(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

#[kinesis_processor(format = text)]
async fn destructured(mut line: String) -> Result<(), RecordError> {
    line.push('!');
    Ok(())
}

/// Docs and visibility are kept.
#[kinesis_processor(format = text)]
pub async fn public(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

mod renamed {
    // `crate = ".."` for a renamed dependency; here the real path, spelled differently.
    #[::kinesis_processor::kinesis_processor(crate = "::kinesis_processor", format = text)]
    pub async fn via_crate_option(line: String) -> Result<(), ::kinesis_processor::RecordError> {
        let _ = line;
        Ok(())
    }
}

fn main() {
    let _ = payload_only();
    let _ = with_meta();
    let _ = with_explicit_meta_lifetime();
    let _ = with_state().state(Db);
    let _ = with_meta_and_state().state(Db);
    let _ = with_state_and_meta().state(Db);
    let _ = plain_fn();
    let _ = std_error();
    let _ = shared_bytes();
    let _ = custom_format();
    let _ = custom_format_path();
    let _ = destructured();
    let _ = with_age_and_exhaustion();
    let _ = reporting();
    let _ = public().retries(1);
    let _ = renamed::via_crate_option();
}
