//! The page-views example (views per page per minute, in Lambda's tumbling windows):
//! its DynamoDB writes against moto on 127.0.0.1, and its processor run on the sample
//! window events in sequence, each carrying the state the previous response returned.
//!
//! A window's end can run more than once (a retried final invocation): writing a window
//! again leaves the same numbers; another count for the same part of a window is refused
//! and the stored one kept; a table that does not exist fails the window end, so that
//! Lambda retries the final invocation.

mod moto;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use kinesis_processor::dead_letter::LogDeadLetter;
use moto::Moto;
use page_views::table::{Published, Table, WindowPart, WriteError, Written};
use page_views::Totals;
use serde_json::Value;
use support::{unavailable, workspace};

macro_rules! moto_or_skip {
    ($test:literal) => {
        match Moto::from_env() {
            Some(moto) => moto,
            None => unavailable($test, "no moto server (KINESIS_PROCESSOR_MOTO_ENDPOINT is unset)"),
        }
    };
}

/// The sample window: its start as the table's sort key, and its shard's part.
const WINDOW_START: &str = "2026-11-26T05:00:00Z";
const FIRST_SEQUENCE_NUMBER: &str = "49590338271490256608559692538361571095921575989136588898";

fn part(attribute: &str) -> WindowPart {
    WindowPart {
        start: WINDOW_START.into(),
        attribute: attribute.into(),
        expires_at: 1_803_445_260,
    }
}

fn views(pages: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pages.iter().map(|(page, views)| ((*page).to_owned(), *views)).collect()
}

async fn table(moto: &Moto) -> Table {
    let name = moto.create_page_views_table("page-views").await;
    Table::new(moto.dynamodb().await, name)
}

type Item = HashMap<String, AttributeValue>;

/// Every item of the table: page -> (window start -> item).
async fn items(moto: &Moto, table: &str) -> BTreeMap<String, BTreeMap<String, Item>> {
    let output = moto.dynamodb().await.scan().table_name(table).send().await.expect("scan");
    let mut items: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
    for item in output.items() {
        let page = item["page"].as_s().unwrap().clone();
        let start = item["window_start"].as_s().unwrap().clone();
        items.entry(page).or_default().insert(start, item.clone());
    }
    items
}

/// Each page's views in the sample window.
async fn views_in_window(moto: &Moto, table: &str) -> BTreeMap<String, u64> {
    items(moto, table)
        .await
        .into_iter()
        .map(|(page, mut windows)| {
            let item = windows.remove(WINDOW_START).expect("an item for the window");
            assert!(windows.is_empty(), "{page}: only the sample window");
            (page, item["views"].as_n().unwrap().parse().unwrap())
        })
        .collect()
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn publishing_a_window_writes_each_pages_views_and_its_expiry() {
    let moto = moto_or_skip!("publishing_a_window_writes_each_pages_views_and_its_expiry");
    let table = table(&moto).await;
    let part = part("part:shardId-000000000003:1");
    let published =
        table.publish(views(&[("/pricing", 3), ("/signup", 2)]), &part).await.expect("published");
    assert_eq!(published, Published { added: 2, ..Published::default() });

    assert_eq!(
        views_in_window(&moto, table.name()).await,
        views(&[("/pricing", 3), ("/signup", 2)])
    );
    let items = items(&moto, table.name()).await;
    let pricing = &items["/pricing"][WINDOW_START];
    assert_eq!(pricing["part:shardId-000000000003:1"].as_n().unwrap(), "3", "{pricing:?}");
    assert_eq!(pricing["expires_at"].as_n().unwrap(), "1803445260", "{pricing:?}");
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn publishing_the_same_window_again_leaves_the_same_numbers() {
    let moto = moto_or_skip!("publishing_the_same_window_again_leaves_the_same_numbers");
    let table = table(&moto).await;
    let part = part("part:shardId-000000000003:1");
    let window = views(&[("/pricing", 3), ("/signup", 2), ("/docs", 1)]);
    table.publish(window.clone(), &part).await.expect("published");
    // The retried final invocation: the same state, the same window.
    for _ in 0..2 {
        let again = table.publish(window.clone(), &part).await.expect("published again");
        assert_eq!(again, Published { already_there: 3, ..Published::default() });
    }
    assert_eq!(views_in_window(&moto, table.name()).await, window);
    // One page at a time, as a final invocation that failed half-way would have left it.
    assert_eq!(table.add("/pricing", &part, 3).await.unwrap(), Written::AlreadyThere);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn each_shards_count_of_a_window_is_added_once() {
    let moto = moto_or_skip!("each_shards_count_of_a_window_is_added_once");
    let table = table(&moto).await;
    let shard_3 = part("part:shardId-000000000003:1");
    let shard_4 = part("part:shardId-000000000004:9");
    table.publish(views(&[("/pricing", 3), ("/signup", 2)]), &shard_3).await.unwrap();
    table.publish(views(&[("/pricing", 4)]), &shard_4).await.unwrap();
    table.publish(views(&[("/pricing", 4)]), &shard_4).await.unwrap();
    table.publish(views(&[("/pricing", 3), ("/signup", 2)]), &shard_3).await.unwrap();
    assert_eq!(
        views_in_window(&moto, table.name()).await,
        views(&[("/pricing", 7), ("/signup", 2)])
    );
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn another_count_for_the_same_part_is_refused_and_the_stored_one_kept() {
    let moto = moto_or_skip!("another_count_for_the_same_part_is_refused_and_the_stored_one_kept");
    let table = table(&moto).await;
    let part = part("part:shardId-000000000003:1");
    assert_eq!(table.add("/pricing", &part, 3).await.unwrap(), Written::Added);

    match table.add("/pricing", &part, 5).await {
        Err(WriteError::Conflict { stored: Some(3), refused: 5 }) => {}
        other => panic!("expected a conflict with the stored 3, got {other:?}"),
    }
    // Publishing a window with a conflicting page: the others are written, the conflict is
    // counted (and logged), and the window end does not fail: writing again cannot help.
    let published = table
        .publish(views(&[("/pricing", 5), ("/signup", 2)]), &part)
        .await
        .expect("a conflict does not fail the window end");
    assert_eq!(published, Published { added: 1, conflicts: 1, ..Published::default() });
    assert_eq!(
        views_in_window(&moto, table.name()).await,
        views(&[("/pricing", 3), ("/signup", 2)])
    );
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_table_that_does_not_exist_is_an_error() {
    let moto = moto_or_skip!("a_table_that_does_not_exist_is_an_error");
    let table = Table::new(moto.dynamodb().await, moto::unique("no-such-table"));
    let part = part("part:shardId-000000000003:1");
    match table.publish(views(&[("/pricing", 3), ("/signup", 2)]), &part).await {
        Err(error @ WriteError::Service(_)) => {
            assert!(error.to_string().contains("ResourceNotFound"), "{error}");
        }
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// The sample events, in order.
fn sample_events() -> Vec<Value> {
    ["window-1-first", "window-2-later", "window-3-final"]
        .iter()
        .map(|name| {
            let path = workspace().join(format!("examples/page-views/events/{name}.json"));
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
        })
        .collect()
}

/// What the sample window counts: its 7 clicks with a page (2 poison clicks are not).
fn sample_totals() -> BTreeMap<String, u64> {
    views(&[("/docs/getting-started", 2), ("/pricing", 3), ("/signup", 2)])
}

fn processor(
    table: Table,
) -> kinesis_processor::Processor<impl kinesis_processor::Handler<State = Totals>> {
    page_views::count()
        .on_window_end(page_views::publish)
        .state(Totals::Table(table))
        .dead_letter(LogDeadLetter::new())
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn the_sample_window_run_in_sequence_counts_each_page_once() {
    let moto = moto_or_skip!("the_sample_window_run_in_sequence_counts_each_page_once");
    let table = table(&moto).await;
    let name = table.name().to_owned();
    let processor = processor(table);

    let mut state = serde_json::json!({});
    for (number, mut event) in sample_events().into_iter().enumerate() {
        // What the sample file carries is what the function returned before it.
        assert_eq!(event["state"], state, "event {number}: the generator's fold");
        event["state"] = state.clone();
        let payload = serde_json::to_vec(&event).unwrap();
        let report = processor.process(&payload).await.expect("processed");
        assert!(report.response().batch_item_failures.is_empty(), "{:?}", report.response());
        state = report.window_state().expect("a window state").clone();
        if number < 2 {
            assert!(items(&moto, &name).await.is_empty(), "nothing written before the end");
        }
    }
    assert_eq!(state["version"], 1, "{state}");
    assert_eq!(views_in_window(&moto, &name).await, sample_totals());
    // The shard's part of the window, named by its first click; expiring 90 days after it.
    let part = format!("part:shardId-000000000003:{FIRST_SEQUENCE_NUMBER}");
    for (page, windows) in items(&moto, &name).await {
        let item = &windows[WINDOW_START];
        assert_eq!(item[&part].as_n().unwrap(), item["views"].as_n().unwrap(), "{page}");
        assert_eq!(item["expires_at"].as_n().unwrap(), "1803445260", "{page}: 05:01 + 90 days");
    }

    // Lambda delivers the final invocation again: the same numbers.
    let final_event = serde_json::to_vec(&sample_events()[2]).unwrap();
    let report = processor.process(&final_event).await.expect("processed again");
    assert!(report.response().batch_item_failures.is_empty(), "{:?}", report.response());
    assert_eq!(views_in_window(&moto, &name).await, sample_totals());
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_window_end_that_cannot_write_fails_so_that_lambda_retries_it() {
    let moto = moto_or_skip!("a_window_end_that_cannot_write_fails_so_that_lambda_retries_it");
    let missing = Table::new(moto.dynamodb().await, moto::unique("no-such-table"));
    let processor = processor(missing).retries(0);
    let events = sample_events();

    // The final invocation without records: an invocation error, retried whole.
    let final_event = serde_json::to_vec(&events[2]).unwrap();
    let error = processor.process(&final_event).await.expect_err("the window end fails");
    assert!(error.to_string().contains("ResourceNotFound"), "{error}");

    // With records: its first record is reported, and the state is the one it came with.
    let mut with_records = events[1].clone();
    with_records["isFinalInvokeForWindow"] = true.into();
    let report = processor.process(serde_json::to_vec(&with_records).unwrap()).await.unwrap();
    let first = with_records["Records"][0]["kinesis"]["sequenceNumber"].as_str().unwrap();
    assert_eq!(report.checkpoint(), Some(first));
    assert_eq!(report.window_state(), Some(&with_records["state"]));
}

/// Runs the example's binary on the sample events, outside Lambda, with `env`.
fn run_locally(env: &[(&str, &str)]) -> Output {
    let events: Vec<PathBuf> = ["window-1-first", "window-2-later", "window-3-final"]
        .iter()
        .map(|name| PathBuf::from(format!("examples/page-views/events/{name}.json")))
        .collect();
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(workspace())
        .args(["run", "--quiet", "-p", "page-views", "--"])
        .args(&events)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("PAGE_VIEWS_TABLE")
        .env_remove("DEAD_LETTER_QUEUE_URL")
        .env_remove("DEAD_LETTERS");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn locally_the_sample_window_is_counted_and_its_totals_logged() {
    let output = run_locally(&[]);
    let (printed, log) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{printed}\n{log}");
    assert!(printed.contains("window-2-later.json: 5 records"), "{printed}");
    let totals: Vec<&str> = log.lines().filter(|line| line.contains("page views")).collect();
    assert_eq!(totals.len(), 3, "one line per page, at the window's end: {log}");
    for (page, views) in sample_totals() {
        assert!(
            totals.iter().any(|line| line.contains(&format!("page=\"{page}\" views={views}"))),
            "{page}: {views} in {totals:?}"
        );
    }
}

#[test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
fn the_binary_writes_to_the_table_the_environment_names() {
    let moto = moto_or_skip!("the_binary_writes_to_the_table_the_environment_names");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = runtime.block_on(moto.create_page_views_table("page-views-binary"));
    let env = [
        ("PAGE_VIEWS_TABLE", name.as_str()),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    for run in 0..2 {
        let output = run_locally(&env);
        let (printed, log) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "run {run}: {printed}\n{log}");
        assert_eq!(runtime.block_on(views_in_window(&moto, &name)), sample_totals(), "run {run}");
    }
}
