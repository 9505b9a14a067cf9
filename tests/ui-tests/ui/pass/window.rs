//! Window functions, with and without a shared state or a window end, compile under
//! `#![deny(warnings)]`.
#![deny(warnings)]
#![deny(unused, unused_qualifications, unused_lifetimes)]

use std::collections::BTreeMap;

use kinesis_processor::{kinesis_processor, Invocation, RecordError, RecordMeta, Window};

pub struct Table;

/// Counts clicks per page.
#[kinesis_processor(window, format = text, retries = 1)]
pub async fn count(
    page: String,
    views: &mut BTreeMap<String, u64>,
    meta: &RecordMeta,
    table: &Table,
) -> Result<(), RecordError> {
    let _ = (meta, table);
    *views.entry(page).or_default() += 1;
    Ok(())
}

async fn publish(views: BTreeMap<String, u64>, window: &Window, table: &Table) -> Result<(), RecordError> {
    let _ = (views, window.start(), table);
    Ok(())
}

/// The state's `&mut` may come anywhere after the payload; a plain `fn` works too.
#[kinesis_processor(window, format = text)]
fn total(invocation: String, meta: &RecordMeta, run: &Invocation, total: &mut u64) -> Result<(), RecordError> {
    let _ = (invocation, meta, run);
    *total += 1;
    Ok(())
}

async fn report(total: u64, _: &Window, _: &()) -> Result<(), std::io::Error> {
    let _ = total;
    Ok(())
}

fn main() {
    let _ = count().on_window_end(publish).state(Table).retries(3);
    let _ = count().state(Table).on_window_end(publish);
    let _ = total().on_window_end(report).into_service();
    let _ = total();
}
