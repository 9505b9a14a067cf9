//! [`Processor`]: a processing function with its state, sink and settings, ready to be run
//! in Lambda, invoked in tests, or replayed locally.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::Instrument as _;

use crate::dead_letter::{DeadLetterSink, ErasedSink};
use crate::engine::{self, Conclude, Context, Guarding};
use crate::error::Error;
use crate::handler::{
    ClaimedHandler, Handler, RecordHandler, WindowEndFn, WindowEnded, WindowStart,
};
use crate::idempotency::IdempotencyStore;
use crate::invocation::Invocation;
use crate::meta::RecordMeta;
use crate::metrics::MetricsSettings;
use crate::report::{BatchOutcome, BatchReport};
use crate::settings::{OnRetriesExhausted, Settings};

/// The remaining time [`Processor::process`] gives an invocation: Lambda's maximum timeout.
pub const SYNTHETIC_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A record processor: what `#[kinesis_processor]` turns a function into.
///
/// Calling the attributed function returns one; the builder methods set what the
/// attribute did not, and [`run`](Self::run) serves Lambda invocations while
/// [`process`](Self::process) handles one payload (tests, replays) and
/// [`respond`](Self::respond) answers one as `run` does in Lambda.
///
/// ```
/// use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::dead_letter::LogDeadLetter;
///
/// struct Greeting(String);
///
/// #[kinesis_processor(format = text)]
/// async fn greet(name: String, greeting: &Greeting) -> Result<(), RecordError> {
///     println!("{}, {name}", greeting.0);
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let processor = greet()
///     .state(Greeting("hello".into()))
///     .dead_letter(LogDeadLetter::new())
///     .retries(5);
/// let report = processor.process(br#"{"Records": []}"#).await.unwrap();
/// assert!(report.response().batch_item_failures.is_empty());
/// # });
/// ```
pub struct Processor<H: Handler, S = <H as Handler>::State> {
    handler: H,
    state: S,
    settings: Settings,
    pub(crate) metrics: MetricsSettings,
    sink: Option<Box<dyn ErasedSink>>,
    guarding: Option<Guarding<H::Payload>>,
}

/// The state of a [`Processor`] whose function takes a shared state that
/// [`state`](Processor::state) has not given yet: such a processor cannot run.
#[derive(Clone, Copy, Debug)]
pub struct NeedsState;

/// A processor's state slot that holds the function's state `S`: true of `S` itself, never
/// of [`NeedsState`]. `run`, `process`, `respond` and `into_service` require it, so that
/// a missing `.state(..)` is a compile error.
#[diagnostic::on_unimplemented(
    message = "this processor's function takes a shared state `&{S}`, and `.state(..)` has \
               not given it",
    label = "the processor has no state yet",
    note = "call `.state(value)` on the processor first, e.g. `NAME().state(value).run()`"
)]
pub trait HasState<S> {
    /// The state.
    fn given_state(&self) -> &S;
    /// The state, by value.
    fn into_given_state(self) -> S;
}

impl<S> HasState<S> for S {
    fn given_state(&self) -> &S {
        self
    }

    fn into_given_state(self) -> S {
        self
    }
}

impl<H: Handler, S> Processor<H, S> {
    /// A processor for `handler` with default settings and `state` in its state slot: the
    /// state itself (`()` for functions that take none), or [`NeedsState`].
    pub(crate) fn new(handler: H, state: S) -> Self {
        Processor {
            handler,
            state,
            settings: Settings::default(),
            metrics: MetricsSettings::default(),
            sink: None,
            guarding: None,
        }
    }
}

impl<H: Handler, S> Processor<H, S> {
    /// Gives the processor the shared state that its function takes by reference (a
    /// lookup table, a client, a connection pool), set up once in `main`.
    pub fn state(self, state: H::State) -> Processor<H> {
        self.map_state(|_| state)
    }

    /// Sends poison records to `sink` instead of reporting them to Lambda.
    ///
    /// Without a sink, permanent failures are reported like retryable ones, so nothing is
    /// dropped silently; [`LogDeadLetter`](crate::dead_letter::LogDeadLetter) is the
    /// explicit choice to log them and move on.
    ///
    /// A sink chosen at run time is an `Option` of a sink (`None`: no sink) or a
    /// [`Box<dyn DynDeadLetterSink>`](crate::dead_letter::DynDeadLetterSink).
    pub fn dead_letter(mut self, sink: impl DeadLetterSink) -> Self {
        self.sink = sink.takes_letters().then(|| Box::new(sink) as Box<dyn ErasedSink>);
        self
    }

    /// In-process attempts after the first for a retryable failure (`retries = N` on the
    /// attribute; default [`DEFAULT_RETRIES`](crate::settings::DEFAULT_RETRIES)), with
    /// jittered exponential backoff starting at 50 ms and capped at 2 s. `0` turns
    /// retries off.
    pub fn retries(mut self, retries: u32) -> Self {
        self.settings.retries = retries;
        self
    }

    /// Records in flight at once, across distinct partition keys (`concurrency = N` on the
    /// attribute; default 1, the whole batch strictly in order). Records of one partition
    /// key are always processed one at a time, in stream order. All run on the invocation's
    /// task, so a current-thread runtime is enough.
    ///
    /// After a failure no record starts, but records of other keys already running finish,
    /// and those after the failed record in the stream are delivered again by Lambda, which
    /// resumes the shard at the failure: with `concurrency` above 1, a record can be
    /// processed twice, so what the function writes downstream should be idempotent.
    ///
    /// A chunk function's unit is the chunk: `records` chunks run at once, and a partition
    /// key is never in two of them. A window processor has no such setting: it folds one
    /// record at a time.
    pub fn concurrency(mut self, records: usize) -> Self
    where
        H: RecordHandler,
    {
        self.settings.concurrency = records.max(1);
        self
    }

    /// How long before the invocation's deadline processing stops (`deadline_margin =
    /// "2s"` on the attribute; default
    /// [`DEFAULT_DEADLINE_MARGIN`](crate::settings::DEFAULT_DEADLINE_MARGIN), 1 s). Then no
    /// record starts, running ones time out, pending dead letters are flushed, and the
    /// response reports the first unfinished record, so that Lambda does not time out and
    /// retry the whole batch.
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.settings.deadline_margin = margin;
        self
    }

    /// What happens to a record whose retries run out (`on_retries_exhausted = report |
    /// dead_letter` on the attribute): reported to Lambda (the default) or dead-lettered
    /// with reason `retries_exhausted`. A record dead-lettered this way holds up later
    /// records of its partition key until the sink confirms it, since a refused letter
    /// makes Lambda deliver it again.
    pub fn on_retries_exhausted(mut self, choice: OnRetriesExhausted) -> Self {
        self.settings.on_retries_exhausted = choice;
        self
    }

    /// Records that have been in the stream longer than `age` when the invocation starts
    /// are dead-lettered with reason `expired` and not processed (`max_record_age =
    /// "15m"` on the attribute). It keeps a shard that has fallen behind from spending its
    /// time on records nobody needs any more; set it below the stream's retention so that
    /// records are dead-lettered with their data rather than lost to expiry.
    pub fn max_record_age(mut self, age: Duration) -> Self {
        self.settings.max_record_age = Some(age);
        self
    }

    /// The CloudWatch namespace of the metrics that [`run`](Self::run) writes in Lambda
    /// (`metrics_namespace = "Clicks"` on the attribute). Without it the namespace comes
    /// from `KINESIS_PROCESSOR_METRICS_NAMESPACE`, else `KinesisProcessor`.
    pub fn metrics_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.metrics.namespace = Some(namespace.into());
        self
    }

    /// Turns the per-invocation metrics on or off. Without it they are on unless
    /// `KINESIS_PROCESSOR_METRICS=off`.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics.enabled = Some(enabled);
        self
    }

    /// Adds the shard id as a metrics dimension (a second dimension set beside function and
    /// stream). Off by default: every shard becomes its own set of metrics, which multiplies
    /// their cost.
    pub fn metrics_by_shard(mut self, by_shard: bool) -> Self {
        self.metrics.shard_dimension = by_shard;
        self
    }

    /// Whether log lines may carry record data: decode errors in full (a JSON error can
    /// quote the payload) and the data of dead-lettered records. Off by default, since
    /// payloads may hold personal data; the dead-letter envelope always carries the data.
    pub fn log_payloads(mut self, log_payloads: bool) -> Self {
        self.settings.log_payloads = log_payloads;
        self
    }

    /// Makes each record's work happen once, as far as `store` can make it: a record is
    /// claimed in the store before the function runs and marked done after it finishes, and
    /// a record already done is skipped as [`Outcome::Duplicate`](crate::Outcome::Duplicate)
    /// (see [`idempotency`](crate::idempotency) for what it guarantees and what not).
    ///
    /// ```no_run
    /// # #[cfg(feature = "dynamodb")] {
    /// use kinesis_processor::idempotency::DynamoDbIdempotency;
    /// # use kinesis_processor::{kinesis_processor, RecordError};
    /// # #[kinesis_processor(format = text)]
    /// # async fn charge(_order: String) -> Result<(), RecordError> { Ok(()) }
    /// # async fn serve() -> Result<(), kinesis_processor::Error> {
    /// let store = DynamoDbIdempotency::from_env("IDEMPOTENCY_TABLE").await?;
    /// charge().idempotency(store).run().await
    /// # }
    /// # }
    /// ```
    pub fn idempotency(mut self, store: impl IdempotencyStore) -> Self
    where
        H: ClaimedHandler,
    {
        let guarding = self.guarding.take().unwrap_or_else(Guarding::default_for);
        self.guarding = Some(Guarding { store: Box::new(store), ..guarding });
        self
    }

    /// Keys each record by its payload for [`idempotency`](Self::idempotency), instead of
    /// by its place in the stream (`idempotency_key = path::to::fn` on the attribute): for
    /// producers that retry one event under two sequence numbers. A record whose payload
    /// cannot be decoded gets no key; it is dead-lettered without running.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
    /// use kinesis_processor::testing::MemoryIdempotency;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Order { order_id: String }
    ///
    /// #[kinesis_processor]
    /// async fn charge(_order: Order) -> Result<(), RecordError> {
    ///     Ok(())
    /// }
    ///
    /// fn order_id(order: &Order, _: &RecordMeta) -> String {
    ///     order.order_id.clone()
    /// }
    ///
    /// let processor = charge().idempotency(MemoryIdempotency::new()).idempotency_key(order_id);
    /// # let _ = processor;
    /// # }
    /// ```
    pub fn idempotency_key<K: Into<String>>(
        mut self,
        key: impl Fn(&H::Payload, &RecordMeta<'_>) -> K + Send + Sync + 'static,
    ) -> Self
    where
        H: ClaimedHandler,
    {
        let guarding = self.guarding.get_or_insert_with(Guarding::default_for);
        guarding.key = Some(Box::new(move |payload, meta| key(payload, meta).into()));
        self
    }

    /// How long a record marked done stays done for [`idempotency`](Self::idempotency):
    /// the `expiration` a store's TTL reads (default 1 hour). Duplicates that come later
    /// run again.
    pub fn idempotency_keep_for(mut self, keep_for: Duration) -> Self
    where
        H: ClaimedHandler,
    {
        self.guarding.get_or_insert_with(Guarding::default_for).keep_for = keep_for;
        self
    }

    /// Runs records unguarded when the idempotency store fails (`true`), logged at `WARN`
    /// once per invocation, instead of reporting them (`false`, the default: fail closed).
    pub fn idempotency_fail_open(mut self, fail_open: bool) -> Self
    where
        H: ClaimedHandler,
    {
        self.guarding.get_or_insert_with(Guarding::default_for).fail_open = fail_open;
        self
    }

    /// The function's name.
    pub fn name(&self) -> &'static str {
        self.handler.name()
    }

    /// The shared state given with [`state`](Self::state), for a test to inspect after
    /// processing (what a fake client recorded, say).
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use kinesis_processor::{kinesis_processor, RecordError};
    ///
    /// #[kinesis_processor(format = text)]
    /// async fn remember(line: String, seen: &Mutex<Vec<String>>) -> Result<(), RecordError> {
    ///     seen.lock().unwrap().push(line);
    ///     Ok(())
    /// }
    ///
    /// let processor = remember().state(Mutex::new(Vec::new()));
    /// assert_eq!(processor.shared_state().lock().unwrap().len(), 0);
    /// ```
    pub fn shared_state(&self) -> &H::State
    where
        S: HasState<H::State>,
    {
        self.state.given_state()
    }

    /// Processes one invocation payload, the bytes exactly as Lambda sends them, with the
    /// remaining time of a 15-minute invocation.
    ///
    /// Per-record failures are in the report; an `Err` means the payload is not a
    /// Kinesis batch, or the batch cannot be acknowledged record by record.
    pub async fn process(&self, payload: impl AsRef<[u8]>) -> Result<BatchReport, Error>
    where
        S: HasState<H::State>,
    {
        self.process_with_deadline(payload, SYNTHETIC_TIMEOUT).await
    }

    /// Processes one invocation payload as if `remaining` were the time left before the
    /// invocation's deadline.
    pub async fn process_with_deadline(
        &self,
        payload: impl AsRef<[u8]>,
        remaining: Duration,
    ) -> Result<BatchReport, Error>
    where
        S: HasState<H::State>,
    {
        self.invoke(payload.as_ref(), &Invocation::local(remaining)).await
    }

    /// Processes one invocation payload as the Lambda loop of [`run`](Self::run) does:
    /// the response and the counts, without the row per record of
    /// [`process`](Self::process), which nothing in Lambda reads.
    ///
    /// For programs that answer Lambda with a loop of their own and cannot use
    /// [`into_service`](Self::into_service): `request_id` is the invocation's (dead letters
    /// and the batch's span carry it), `remaining` the time left before its deadline.
    /// Metrics are the caller's to write, with [`emf`](Self::emf)`(outcome.summary())`.
    /// An `Err` means what it means for [`process`](Self::process).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use std::time::Duration;
    /// use kinesis_processor::{kinesis_processor, RecordError};
    /// use kinesis_processor::testing::TestBatch;
    ///
    /// #[kinesis_processor(format = text)]
    /// async fn accept(_line: String) -> Result<(), RecordError> {
    ///     Ok(())
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let event = TestBatch::new().text("a").build();
    /// let outcome = accept().respond(event, "request-1", Duration::from_secs(60)).await.unwrap();
    /// assert!(outcome.response().batch_item_failures.is_empty());
    /// assert_eq!(outcome.summary().succeeded, 1);
    /// # });
    /// # }
    /// ```
    pub async fn respond(
        &self,
        payload: impl AsRef<[u8]>,
        request_id: &str,
        remaining: Duration,
    ) -> Result<BatchOutcome, Error>
    where
        S: HasState<H::State>,
    {
        let invocation = Invocation::new(request_id, Instant::now() + remaining);
        self.invoke(payload.as_ref(), &invocation).await
    }

    /// Processes one invocation into a report of kind `R`.
    pub(crate) async fn invoke<R: Conclude>(
        &self,
        payload: &[u8],
        invocation: &Invocation,
    ) -> Result<R, Error>
    where
        S: HasState<H::State>,
    {
        let function_name = function_name(self.handler.name());
        let cx = Context {
            invocation,
            function_name: &function_name,
            started: SystemTime::now(),
            settings: &self.settings,
            sink: self.sink.as_deref(),
            windowed: H::WINDOWED,
            chunked: H::CHUNKED,
        };
        let span = tracing::info_span!(
            "kinesis_batch",
            request_id = invocation.request_id(),
            xray_trace_id = invocation.xray_trace_id(),
            processor = self.handler.name(),
            stream = tracing::field::Empty,
            shard_id = tracing::field::Empty,
            batch_size = tracing::field::Empty,
            units = tracing::field::Empty,
            first_sequence_number = tracing::field::Empty,
            last_sequence_number = tracing::field::Empty,
        );
        let state = self.state.given_state();
        let guarding = self.guarding.as_ref();
        engine::process_batch(&self.handler, state, guarding, payload, &cx).instrument(span).await
    }

    /// The same processor with its state in the state's own type.
    pub(crate) fn ready(self) -> Processor<H>
    where
        S: HasState<H::State>,
    {
        self.map_state(HasState::into_given_state)
    }

    /// The same processor with `f` applied to its state.
    fn map_state<T>(self, f: impl FnOnce(S) -> T) -> Processor<H, T> {
        let Processor { handler, state, settings, metrics, sink, guarding } = self;
        Processor { handler, state: f(state), settings, metrics, sink, guarding }
    }
}

/// The window processors of `#[kinesis_processor(window)]` functions, before their window end.
impl<F, T, W, S, Format, St> Processor<WindowStart<F, T, W, S, Format>, St>
where
    WindowStart<F, T, W, S, Format>: Handler<Payload = T>,
{
    /// Gives a window processor (`#[kinesis_processor(window)]`) the function that runs at
    /// the end of each window, on its final invocation, with the finished window state:
    /// `async fn(finished: W, window: &Window, state: &S) -> Result<(), E>`, where `S` is the
    /// processor's shared state (`&()` when it has none) and `E: Into<RecordError>`.
    ///
    /// It runs after every record of the final invocation is done, and only if none is
    /// reported. A retryable failure is retried as a record's is; a failure that remains
    /// makes Lambda deliver the final invocation again (its records from the first, with
    /// the state they came with), so **it can run more than once for one window**: write
    /// idempotently, e.g. keyed by the window's start.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use std::sync::Mutex;
    /// use std::time::SystemTime;
    /// use kinesis_processor::{kinesis_processor, RecordError, Window};
    ///
    /// /// Finished windows by start: the processor's shared state.
    /// type Store = Mutex<BTreeMap<SystemTime, BTreeMap<String, u64>>>;
    ///
    /// /// Counts lines per first word.
    /// #[kinesis_processor(window, format = text)]
    /// async fn count(
    ///     line: String,
    ///     counts: &mut BTreeMap<String, u64>,
    ///     _store: &Store,
    /// ) -> Result<(), RecordError> {
    ///     let word = line.split_whitespace().next().unwrap_or_default();
    ///     *counts.entry(word.to_owned()).or_default() += 1;
    ///     Ok(())
    /// }
    ///
    /// /// Stores the window's totals under its start: a second run writes the same entry.
    /// async fn publish(
    ///     counts: BTreeMap<String, u64>,
    ///     window: &Window,
    ///     store: &Store,
    /// ) -> Result<(), RecordError> {
    ///     store.lock().unwrap().insert(window.start(), counts);
    ///     Ok(())
    /// }
    ///
    /// let processor = count().on_window_end(publish).state(Mutex::new(BTreeMap::new()));
    /// # let _ = processor;
    /// ```
    pub fn on_window_end<E>(self, end: E) -> Processor<WindowEnded<F, T, W, S, Format, E>, St>
    where
        E: for<'a> WindowEndFn<'a, W, S> + Send + Sync + 'static,
        WindowEnded<F, T, W, S, Format, E>: Handler<Payload = T>,
    {
        let Processor { handler, state, settings, metrics, sink, guarding } = self;
        Processor { handler: handler.with_end(end), state, settings, metrics, sink, guarding }
    }
}

/// The Lambda function's name when running in Lambda, the processor's name otherwise.
pub(super) fn function_name(processor: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| processor.to_owned())
}
