//! Ordered concurrency by partition key and deadline-aware checkpoints: examples first,
//! then properties over random batches on tokio's paused clock (fast and exact).

mod answers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::dead_letter::DeadLetterReason;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, BatchReport, Outcome, RecordError, RecordMeta};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// What a record's processing does, carried in the record itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Behaviour {
    /// Succeeds after this many milliseconds.
    Ok(u64),
    /// Fails retryably every time.
    Fail,
    /// Rejects the record (permanent).
    Reject,
    /// Panics every time.
    Panic,
    /// Never completes: a hung downstream call.
    Hang,
    /// Fails its first attempt, then succeeds after this many milliseconds.
    FlakyOnce(u64),
    /// Holds the thread this many milliseconds and never yields: CPU-bound work.
    Busy(u64),
}

#[derive(Debug, Serialize, Deserialize)]
struct Task {
    id: usize,
    behaviour: Behaviour,
}

/// One start or end of an attempt, on the paused clock.
#[derive(Clone, Debug)]
struct Event {
    id: usize,
    key: String,
    at: Instant,
    attempt: u32,
    start: bool,
}

/// Everything the processing function observed.
#[derive(Default)]
struct Probe {
    events: Mutex<Vec<Event>>,
    attempts: Mutex<HashMap<usize, u32>>,
    in_flight: Mutex<HashMap<String, usize>>,
    violations: Mutex<Vec<String>>,
}

/// Marks the end of an attempt however it ends: returned, panicked, or cut (dropped).
struct Attempt<'a> {
    probe: &'a Probe,
    id: usize,
    key: String,
    attempt: u32,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.probe.in_flight.lock().unwrap().remove(&self.key);
        self.probe.events.lock().unwrap().push(Event {
            id: self.id,
            key: self.key.clone(),
            at: Instant::now(),
            attempt: self.attempt,
            start: false,
        });
    }
}

#[kinesis_processor(retries = 2)]
async fn probed(task: Task, meta: &RecordMeta, probe: &Arc<Probe>) -> Result<(), RecordError> {
    let key = meta.partition_key().to_owned();
    let attempt = {
        let mut attempts = probe.attempts.lock().unwrap();
        let n = attempts.entry(task.id).or_insert(0);
        *n += 1;
        *n
    };
    if let Some(other) = probe.in_flight.lock().unwrap().insert(key.clone(), task.id) {
        probe
            .violations
            .lock()
            .unwrap()
            .push(format!("{} and {other} of key {key} in flight together", task.id));
    }
    probe.events.lock().unwrap().push(Event {
        id: task.id,
        key: key.clone(),
        at: Instant::now(),
        attempt,
        start: true,
    });
    let _attempt = Attempt { probe, id: task.id, key, attempt };
    match task.behaviour {
        Behaviour::Ok(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Behaviour::Fail => return Err(RecordError::retry("downstream unavailable")),
        Behaviour::Reject => return Err(RecordError::reject("poison")),
        Behaviour::Panic => panic!("a bug in the processing function"),
        Behaviour::Hang => std::future::pending::<()>().await,
        Behaviour::FlakyOnce(_) if attempt == 1 => return Err(RecordError::retry("blip")),
        Behaviour::FlakyOnce(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Behaviour::Busy(ms) => std::thread::sleep(Duration::from_millis(ms)),
    }
    Ok(())
}

/// A record of the generated batch: plain, or an aggregate of user records.
#[derive(Clone, Debug)]
enum Spec {
    Plain(Behaviour),
    Aggregate(Vec<(usize, Behaviour)>),
}

/// Builds the event; tasks are numbered in stream order (user records one by one).
fn build(specs: &[(Spec, Vec<String>)]) -> Vec<u8> {
    let mut batch = TestBatch::new();
    let mut id = 0;
    for (spec, keys) in specs {
        match spec {
            Spec::Plain(behaviour) => {
                batch = batch.json(&Task { id, behaviour: *behaviour }).partition_key(&keys[0]);
                id += 1;
            }
            Spec::Aggregate(users) => {
                let data: Vec<Vec<u8>> = users
                    .iter()
                    .enumerate()
                    .map(|(n, (_, behaviour))| {
                        serde_json::to_vec(&Task { id: id + n, behaviour: *behaviour }).unwrap()
                    })
                    .collect();
                let records: Vec<UserRecord<'_>> = data
                    .iter()
                    .zip(keys)
                    .map(|(data, key)| UserRecord {
                        partition_key: key,
                        explicit_hash_key: None,
                        data,
                    })
                    .collect();
                batch = batch.aggregate(&records);
                id += users.len();
            }
        }
    }
    batch.build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

fn outcomes(report: &BatchReport) -> Vec<Outcome> {
    report.records().map(|r| r.outcome()).collect()
}

fn plain(behaviours: &[(&str, Behaviour)]) -> Vec<(Spec, Vec<String>)> {
    behaviours.iter().map(|(key, b)| (Spec::Plain(*b), vec![key.to_string()])).collect()
}

#[test]
fn distinct_keys_run_together_and_one_key_runs_in_order() {
    runtime().block_on(async {
        let specs: Vec<(&str, Behaviour)> =
            (0..20).map(|n| (["a", "b", "c", "d"][n % 4], Behaviour::Ok(100))).collect();
        let probe = Arc::new(Probe::default());
        let started = Instant::now();
        let report = probed()
            .state(probe.clone())
            .concurrency(4)
            .process(build(&plain(&specs)))
            .await
            .unwrap();
        assert!(report.response().batch_item_failures.is_empty());
        // Five records per key, 100 ms each: the keys overlap fully.
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert!(probe.violations.lock().unwrap().is_empty());
    });
}

#[test]
fn concurrency_one_processes_the_batch_strictly_in_order() {
    runtime().block_on(async {
        let specs: Vec<(&str, Behaviour)> =
            (0..6).map(|n| (["a", "b", "c"][n % 3], Behaviour::Ok(10))).collect();
        let probe = Arc::new(Probe::default());
        let started = Instant::now();
        probed().state(probe.clone()).process(build(&plain(&specs))).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(60));
        let starts: Vec<usize> =
            probe.events.lock().unwrap().iter().filter(|e| e.start).map(|e| e.id).collect();
        assert_eq!(starts, [0, 1, 2, 3, 4, 5]);
    });
}

#[test]
fn after_a_failure_nothing_new_starts_and_running_records_finish() {
    runtime().block_on(async {
        let specs = [
            ("a", Behaviour::Ok(500)),
            ("b", Behaviour::Fail),
            ("c", Behaviour::Ok(10)),
            ("d", Behaviour::Ok(10)),
        ];
        let probe = Arc::new(Probe::default());
        let batch = build(&plain(&specs));
        let report =
            probed().state(probe.clone()).concurrency(2).retries(0).process(batch).await.unwrap();
        // `a` was in flight when `b` failed: it finished. `c` and `d` never started.
        assert_eq!(
            outcomes(&report),
            [Outcome::Succeeded, Outcome::Failed, Outcome::NotStarted, Outcome::NotStarted]
        );
        assert_eq!(report.checkpoint(), report.records().nth(1).unwrap().sequence_number());
    });
}

#[test]
fn the_checkpoint_is_the_lowest_unfinished_record_not_the_first_failure_seen() {
    runtime().block_on(async {
        // `a` fails late, `b` fails early: the response still names `a`.
        let specs = [("a", Behaviour::Ok(0)), ("b", Behaviour::Fail), ("c", Behaviour::Ok(0))];
        let mut specs = plain(&specs);
        specs[0].0 = Spec::Plain(Behaviour::FlakyOnce(0));
        let probe = Arc::new(Probe::default());
        let report =
            probed().state(probe).concurrency(3).retries(0).process(build(&specs)).await.unwrap();
        assert_eq!(outcomes(&report)[..2], [Outcome::Failed, Outcome::Failed]);
        assert_eq!(report.checkpoint(), report.records().next().unwrap().sequence_number());
    });
}

#[test]
fn a_hung_call_returns_a_partial_response_before_a_three_second_deadline() {
    runtime().block_on(async {
        let specs = [("a", Behaviour::Ok(100)), ("b", Behaviour::Hang), ("c", Behaviour::Ok(100))];
        let probe = Arc::new(Probe::default());
        let started = Instant::now();
        let report = probed()
            .state(probe)
            .process_with_deadline(build(&plain(&specs)), Duration::from_secs(3))
            .await
            .unwrap();
        let elapsed = started.elapsed();
        // Cut at the default one-second margin: two seconds in.
        assert_eq!(elapsed, Duration::from_secs(2));
        assert_eq!(outcomes(&report), [Outcome::Succeeded, Outcome::TimedOut, Outcome::NotStarted]);
        assert_eq!(report.checkpoint(), report.records().nth(1).unwrap().sequence_number());
    });
}

/// A call that ends the moment the cut comes: nothing after it starts, also on tokio's
/// paused clock, which moves only while the runtime waits.
#[test]
fn nothing_starts_after_a_call_that_ends_as_the_cut_comes() {
    runtime().block_on(async {
        let specs =
            [("a", Behaviour::Ok(2000)), ("b", Behaviour::Ok(100)), ("c", Behaviour::Ok(0))];
        let report = probed()
            .state(Arc::new(Probe::default()))
            .process_with_deadline(build(&plain(&specs)), Duration::from_secs(3))
            .await
            .unwrap();
        // Cut at the default one-second margin: two seconds in, as the first call ends.
        assert_eq!(
            outcomes(&report),
            [Outcome::Succeeded, Outcome::NotStarted, Outcome::NotStarted]
        );
    });
}

/// Calls that never yield give the runtime's timers no chance to fire, so the deadline must
/// be read from the clock before each start. Real time: the paused clock stands still while
/// a thread sleeps.
#[test]
fn calls_that_never_yield_still_stop_at_the_deadline() {
    for concurrency in [1, 4] {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let specs: Vec<(&str, Behaviour)> =
                (0..20).map(|n| (["a", "b", "c", "d"][n % 4], Behaviour::Busy(50))).collect();
            let started = Instant::now();
            let report = probed()
                .state(Arc::new(Probe::default()))
                .concurrency(concurrency)
                .deadline_margin(Duration::from_millis(400))
                .process_with_deadline(build(&plain(&specs)), Duration::from_secs(1))
                .await
                .unwrap();
            // Cut 600 ms in: the call running then finishes, and nothing runs after it, so
            // at most 13 calls of 50 ms finish (all 20 did, a second late, before the clock
            // was read). Calls run in stream order, so the finished ones are a prefix of the
            // batch; with room for four, the ones placed but not yet run are cut.
            let elapsed = started.elapsed();
            assert!(elapsed < Duration::from_secs(1), "{concurrency}: {elapsed:?}");
            let outcomes = outcomes(&report);
            let done = outcomes.iter().take_while(|o| **o == Outcome::Succeeded).count();
            assert!((1..=13).contains(&done), "{concurrency}: {outcomes:?}");
            let (cut, unstarted) = outcomes[done..].split_at(concurrency - 1);
            assert!(cut.iter().all(|o| *o == Outcome::TimedOut), "{outcomes:?}");
            assert!(unstarted.iter().all(|o| *o == Outcome::NotStarted), "{outcomes:?}");
            assert_eq!(report.checkpoint(), report.records().nth(done).unwrap().sequence_number());
        });
    }
}

#[test]
fn retry_backoff_never_sleeps_past_the_deadline() {
    runtime().block_on(async {
        let specs = [("a", Behaviour::Fail)];
        let probe = Arc::new(Probe::default());
        let started = Instant::now();
        let report = probed()
            .state(probe.clone())
            .retries(50)
            .deadline_margin(Duration::from_millis(200))
            .process_with_deadline(build(&plain(&specs)), Duration::from_millis(700))
            .await
            .unwrap();
        assert!(started.elapsed() <= Duration::from_millis(500), "{:?}", started.elapsed());
        let record = report.records().next().unwrap();
        assert_eq!(record.outcome(), Outcome::Failed);
        assert!(record.attempts() < 51);
        assert!(
            record.error().unwrap().contains("no time left before the deadline"),
            "{:?}",
            record.error()
        );
    });
}

#[test]
fn pending_dead_letters_are_flushed_at_the_deadline() {
    runtime().block_on(async {
        let specs = [("a", Behaviour::Reject), ("b", Behaviour::Hang), ("c", Behaviour::Reject)];
        let dlq = MemoryDeadLetter::default();
        let report = probed()
            .state(Arc::new(Probe::default()))
            .concurrency(3)
            .dead_letter(dlq.clone())
            .process_with_deadline(build(&plain(&specs)), Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(
            outcomes(&report),
            [
                Outcome::DeadLettered(DeadLetterReason::Rejected),
                Outcome::TimedOut,
                Outcome::NotStarted, // its letter was withheld: it is redelivered anyway
            ]
        );
        assert_eq!(dlq.records().len(), 1);
    });
}

#[test]
fn letters_of_records_after_the_checkpoint_are_withheld() {
    runtime().block_on(async {
        // `a` fails after `b` has been rejected: `b` is delivered again, so its letter waits.
        let specs = [("a", Behaviour::FlakyOnce(0)), ("b", Behaviour::Reject)];
        let mut specs = plain(&specs);
        specs[0].0 = Spec::Plain(Behaviour::Fail);
        let dlq = MemoryDeadLetter::default();
        let report = probed()
            .state(Arc::new(Probe::default()))
            .concurrency(2)
            .retries(1)
            .dead_letter(dlq.clone())
            .process(build(&specs))
            .await
            .unwrap();
        assert_eq!(outcomes(&report), [Outcome::Failed, Outcome::NotStarted]);
        assert!(dlq.records().is_empty(), "the rejected record comes after the checkpoint");
    });
}

// ---- properties ---------------------------------------------------------------------------

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        60 => (0u64..400).prop_map(Behaviour::Ok),
        5 => Just(Behaviour::Fail),
        8 => Just(Behaviour::Reject),
        4 => Just(Behaviour::Panic),
        3 => Just(Behaviour::Hang),
        10 => (0u64..200).prop_map(Behaviour::FlakyOnce),
    ]
}

fn key() -> impl Strategy<Value = String> {
    (0..5u8).prop_map(|k| format!("key-{k}"))
}

fn spec() -> impl Strategy<Value = (Spec, Vec<String>)> {
    prop_oneof![
        4 => (behaviour(), key()).prop_map(|(b, k)| (Spec::Plain(b), vec![k])),
        1 => proptest::collection::vec((behaviour(), key()), 1..5).prop_map(|users| {
            let keys = users.iter().map(|(_, k)| k.clone()).collect();
            (Spec::Aggregate(users.into_iter().enumerate().map(|(n, (b, _))| (n, b)).collect()), keys)
        }),
    ]
}

#[derive(Clone, Debug)]
struct Setting {
    concurrency: usize,
    retries: u32,
    remaining: Duration,
    margin: Duration,
}

fn setting() -> impl Strategy<Value = Setting> {
    (1usize..8, 0u32..3, 300u64..8_000, 50u64..1_500).prop_map(
        |(concurrency, retries, remaining, margin)| Setting {
            concurrency,
            retries,
            remaining: Duration::from_millis(remaining),
            margin: Duration::from_millis(margin),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn concurrency_keeps_order_checkpoints_and_the_deadline(
        specs in proptest::collection::vec(spec(), 1..30),
        setting in setting(),
    ) {
        let probe = Arc::new(Probe::default());
        let dlq = MemoryDeadLetter::default();
        let (report, elapsed) = runtime().block_on(async {
            let started = Instant::now();
            let report = probed()
                .state(probe.clone())
                .concurrency(setting.concurrency)
                .retries(setting.retries)
                .deadline_margin(setting.margin)
                .dead_letter(dlq.clone())
                .process_with_deadline(build(&specs), setting.remaining)
                .await
                .unwrap();
            (report, started.elapsed())
        });
        let events = probe.events.lock().unwrap().clone();
        let rows: Vec<_> = report.records().collect();

        // What the Lambda loop runs answers as `process` does. Without retries: their
        // backoff is jittered, so two runs of one batch wait differently.
        let processor = || {
            probed()
                .state(Arc::new(Probe::default()))
                .concurrency(setting.concurrency)
                .retries(0)
                .deadline_margin(setting.margin)
                .dead_letter(MemoryDeadLetter::default())
        };
        let (full, outcome) = runtime().block_on(async {
            let full = processor().process_with_deadline(build(&specs), setting.remaining).await;
            (full.unwrap(), processor().respond(build(&specs), "property", setting.remaining).await.unwrap())
        });
        answers::assert_same_answer(&full, &outcome, &format!("{specs:?}"));

        // The response arrives before the deadline.
        prop_assert!(elapsed <= setting.remaining, "{elapsed:?} > {:?}", setting.remaining);
        // Never two records of a key in flight.
        let violations = probe.violations.lock().unwrap().clone();
        prop_assert!(violations.is_empty(), "{violations:?}");
        // Per key, first attempts start in stream order.
        let mut last_of_key: HashMap<&str, usize> = HashMap::new();
        for event in events.iter().filter(|e| e.start && e.attempt == 1) {
            if let Some(previous) = last_of_key.insert(&event.key, event.id) {
                prop_assert!(previous < event.id, "key {}: {} started after {}", event.key, event.id, previous);
            }
        }
        // The reported record is the lowest unfinished one, and all before it are finished.
        let lowest_unfinished = rows
            .iter()
            .filter(|r| !r.outcome().is_finished())
            .filter_map(|r| r.sequence_number())
            .min_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        prop_assert_eq!(report.checkpoint(), lowest_unfinished);
        for row in &rows {
            prop_assert!(row.outcome().is_finished() || row.redelivered(), "{row:?} is lost");
        }
        // No record starts after a failure is final.
        let failed_at = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.outcome() == Outcome::Failed)
            .filter_map(|(id, _)| events.iter().filter(|e| e.id == id && !e.start).map(|e| e.at).max())
            .min();
        if let Some(failed_at) = failed_at {
            for event in events.iter().filter(|e| e.start && e.attempt == 1) {
                prop_assert!(event.at <= failed_at, "{} started after a failure", event.id);
            }
        }
        // A hung record never succeeds; a rejected one that is finished is in the sink.
        let behaviours: Vec<Behaviour> = specs
            .iter()
            .flat_map(|(spec, _)| match spec {
                Spec::Plain(b) => vec![*b],
                Spec::Aggregate(users) => users.iter().map(|(_, b)| *b).collect(),
            })
            .collect();
        prop_assert_eq!(behaviours.len(), rows.len());
        let letters = dlq.records();
        for (row, behaviour) in rows.iter().zip(&behaviours) {
            if *behaviour == Behaviour::Hang {
                prop_assert_ne!(row.outcome(), Outcome::Succeeded);
            }
            if let Outcome::DeadLettered(_) = row.outcome() {
                let in_sink = letters.iter().any(|l| {
                    l.sequence_number.as_deref() == row.sequence_number()
                        && l.sub_sequence_number == row.sub_sequence_number()
                });
                prop_assert!(in_sink, "{row:?} is not in the sink");
            }
        }
    }
}
