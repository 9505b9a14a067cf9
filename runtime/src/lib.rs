//! Typed record processors for Amazon Kinesis Data Streams on AWS Lambda.
//!
//! Put `#[kinesis_processor]` on a function that processes one record; the attribute
//! turns it into a full Lambda handler that parses the batch leniently, decodes each
//! record, processes records in stream order, retries in-process, dead-letters poison
//! records, and answers Lambda with the checkpoint that loses nothing.
//!
//! ```no_run
//! use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
//! use kinesis_processor::dead_letter::LogDeadLetter;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Click { user_id: String, url: String }
//!
//! /// Counts clicks per page.
//! #[kinesis_processor(retries = 3)]
//! async fn track(click: Click, meta: &RecordMeta) -> Result<(), RecordError> {
//!     if click.url.is_empty() {
//!         return Err(RecordError::reject("a click without a url"));
//!     }
//!     println!("{} clicked {} ({})", click.user_id, click.url, meta.sequence_number());
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), kinesis_processor::Error> {
//!     track().dead_letter(LogDeadLetter::new()).run().await
//! }
//! ```
//!
//! # The function
//!
//! `async fn NAME(payload: T [, meta: &RecordMeta] [, invocation: &Invocation] [, state: &S])
//! -> Result<(), E>` (or a plain `fn`), with `E: Into<RecordError>`; after the payload the
//! other parameters come in any order, [`RecordMeta`] and [`Invocation`] recognised by
//! name. The attribute replaces it with `fn NAME() -> Processor<..>`, keeping its
//! visibility and docs. A function that takes a state `&S` cannot run until
//! [`.state(..)`](Processor::state) gives it one: without it, `run`, `process` and
//! `into_service` do not compile. The payload, the function's future and the state must be
//! `Send` and `'static`, and the state `Sync` too: records run at once, and
//! `lambda_runtime` may run invocations on any thread.
//! Options:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `window` | a window function: it folds each record into a window state (see below) | off |
//! | `chunk = N` | a chunk function: it takes up to N records per call as a [`Chunk<T>`] (1 to 10,000; see [`chunk`]) | off |
//! | `format = json \| text \| bytes \| path::To::Format` | how a record's bytes become `T` ([`decode`]) | `json` |
//! | `concurrency = N` | records (a chunk function's chunks) in flight across distinct partition keys (one key: one at a time, in order) | 1 |
//! | `retries = N` | in-process attempts after the first, with jittered exponential backoff | 2 |
//! | `max_record_age = "15m"` | older records are dead-lettered with reason `expired`, unprocessed | none |
//! | `on_retries_exhausted = report \| dead_letter` | what happens when retries run out | `report` |
//! | `deadline_margin = "1s"` | stop this long before the invocation's deadline | 1 s |
//! | `metrics_namespace = "Clicks"` | the CloudWatch namespace of the per-invocation metrics | `KINESIS_PROCESSOR_METRICS_NAMESPACE`, else `KinesisProcessor` |
//! | `idempotency_key = path::to::fn` | key records by `fn(&T, &RecordMeta) -> K` for [`idempotency`](Processor::idempotency) | the record's place in the stream |
//! | `crate = "path"` | where this crate is, when renamed | `::kinesis_processor` |
//!
//! Durations are written as [humantime](https://docs.rs/humantime) reads them: `"90s"`,
//! `"15m"`, `"1h 30m"`, `"500ms"`; the attribute checks them at compile time.
//!
//! # Window functions: aggregation over tumbling windows
//!
//! With `TumblingWindowInSeconds` on the event source mapping, Lambda carries a `state`
//! from one invocation of a shard's window to the next. `#[kinesis_processor(window)]` on a
//! function that takes the window state as `&mut W` (anywhere after the payload; `W` a
//! [`WindowState`]: `Default + Clone` and serde) folds each record into it, and
//! [`on_window_end`](Processor::on_window_end) gives the function that gets the finished
//! state on the window's final invocation. **The state answered is the fold of exactly
//! the records before the checkpoint**: an attempt folds into a copy kept only if it
//! succeeds, dead-lettered records do not count, and a dead letter is confirmed before
//! the next record starts. Window functions take no `concurrency`. See [`window`] for the
//! state's JSON form and the 1 MB limit.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kinesis_processor::{kinesis_processor, RecordError, Window};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Click { url: String }
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! struct PageViews { by_page: BTreeMap<String, u64> }
//!
//! /// Folds one click into the window's totals.
//! #[kinesis_processor(window)]
//! async fn count(click: Click, views: &mut PageViews) -> Result<(), RecordError> {
//!     *views.by_page.entry(click.url).or_default() += 1;
//!     Ok(())
//! }
//!
//! /// Runs on the window's final invocation; it may run again if that invocation is
//! /// retried, so it writes idempotently (keyed by the window's start).
//! async fn publish(views: PageViews, window: &Window, _: &()) -> Result<(), RecordError> {
//!     println!("{:?}: {:?}", window.start(), views.by_page);
//!     Ok(())
//! }
//!
//! # async fn serve() -> Result<(), kinesis_processor::Error> {
//! count().on_window_end(publish).run().await
//! # }
//! ```
//!
//! # Chunk functions: many records per downstream call
//!
//! `#[kinesis_processor(chunk = 25)]` on a function that takes a [`Chunk<T>`] in place of
//! the payload (then `&Invocation` and `&S` as before) gives it up to 25 decoded records
//! per call, in stream order, for one bulk write. It answers with a [`ChunkError`] for
//! what failed: the whole chunk, or some records, each retryable or rejected; the records
//! it does not name succeeded. Only the retryable failures are called again, as a smaller
//! chunk; the checkpoint stays at the first record not done. See [`chunk`].
//!
//! # The rules it keeps
//!
//! - **Nothing is lost.** Every record ends succeeded, dead-lettered (the sink confirmed
//!   it), or at or after the checkpoint that the response reports, so Lambda delivers it
//!   again.
//! - **Kinesis checkpoints.** The response names at most one record: the first one not
//!   finished. After a failure no later record starts, since Lambda redelivers them all.
//!   Sequence numbers are compared as big integers.
//! - **Errors.** Retryable errors (any `std::error::Error` through `?`, a panic) are
//!   retried in-process, then reported. [`RecordError::reject`] and undecodable records
//!   go to the dead-letter sink and the batch moves on; with no sink they are reported.
//! - **Lenient envelope.** One undecodable record fails alone; a payload that is not a
//!   Kinesis batch is an invocation error with a clear message. What real tools write is
//!   read: a UTF-8 byte-order mark, a record without `eventID` (its shard is unknown) or
//!   with it inside `kinesis`, a record without `kinesis` (named by its `eventID`'s
//!   sequence number); a record that is not a JSON object is dead-lettered with its text.
//!
//! # The pipeline, and its words
//!
//! A payload flows one way: **batch** (read the payload into units; a window processor's
//! **window** fields beside them) → **engine** (run the units, decide the checkpoint, close
//! the window) → **report** (the rows, the Lambda response, the counts) → metrics and dead
//! letters. Each word below names one idea, in types, docs and logs.
//!
//! | word | meaning | where it lives |
//! |---|---|---|
//! | payload | the bytes of one invocation, as Lambda sends them | `batch` |
//! | record | one element of the event's `Records`: a Kinesis record | `batch::record` |
//! | user record | one record inside a KPL aggregate | [`aggregation`] |
//! | unit | what the function is called with: a plain record, or one user record of an aggregate | `batch::units` |
//! | undecodable | a unit that cannot be processed as received (envelope, base64, aggregate or payload format); dead-lettered with reason `decode_error`, its text the *decode error* | `batch::record`, `engine::attempt` |
//! | attempt | one call of the function for a unit; retries are further attempts | `engine::attempt` |
//! | invocation | one call of the Lambda function, with one payload: its request id, deadline and trace ([`Invocation`]) | `invocation` |
//! | deadline | when Lambda ends the invocation | `engine::deadline` |
//! | stop | the batch starts no more units: after a reported failure, or at the deadline less `deadline_margin` | `engine::ledger`, `engine::deadline` |
//! | timed out | the outcome of a unit still running at that stop | [`Outcome::TimedOut`] |
//! | settled | the batch at its end: every unit's [`Outcome`] and the checkpoint | `engine::outcome` |
//! | checkpoint | the sequence number the response names: the first unit not done; Lambda resumes there | `engine::ledger` |
//! | redelivered | at or after the checkpoint: Lambda delivers it again | `engine::ledger` |
//! | dead letter | the envelope of a unit sent to a sink instead of being reported | [`dead_letter`] |
//! | report | [`BatchReport`] (a row per unit), [`BatchOutcome`] (response and counts), [`BatchSummary`] (the counts) | `report` |
//! | idempotency key | what a record is known by in an idempotency store: its stream, sequence and sub-sequence number, or a key from its payload | [`idempotency`], `engine::guard` |
//! | claim | an idempotency key held in progress by one invocation until its deadline; completed (done) or released when the batch ends | [`idempotency`], `engine::guard` |
//! | duplicate | a unit whose key is done: skipped without calling the function ([`Outcome::Duplicate`]) | `engine::guard` |
//! | chunk | up to `chunk` decoded units, in stream order, for one call of a chunk function ([`Chunk`]); a retry's chunk holds the units that failed retryably | [`chunk`], `engine::chunks` |
//! | window | a tumbling window of a shard: its start, end and invocations ([`Window`]) | [`window`] |
//! | window state | what a window function folds records into; Lambda carries it between the window's invocations as `state` | [`window`], `engine::fold` |
//! | final invocation | the window's last invocation (`isFinalInvokeForWindow`), on which the window end runs | `engine::close` |
//! | window end | the function given with [`on_window_end`](Processor::on_window_end): the finished window state goes there | `engine::close` |
//!
//! # Using your own Lambda loop
//!
//! [`run`](Processor::run) is the short way: it installs a `tracing` subscriber and serves
//! `lambda_runtime::run(processor.into_service())` (or, outside Lambda, replays event files).
//! [`into_service`](Processor::into_service) gives the same processor as a tower
//! [`ProcessorService`], cheap to clone, for a loop of your own:
//!
//! ```no_run
//! # use kinesis_processor::{kinesis_processor, RecordError};
//! # #[kinesis_processor(format = text)]
//! # async fn track(_line: String) -> Result<(), RecordError> { Ok(()) }
//! # async fn serve() -> Result<(), lambda_runtime::Error> {
//! // Behind tower layers: your own, or lambda_runtime's OpenTelemetry layer.
//! let layer = lambda_runtime::layers::TracingLayer::new();
//! lambda_runtime::Runtime::new(track().into_service()).layer(layer).run().await?;
//!
//! // On Lambda's concurrent mode (`lambda_runtime` feature `concurrency-tokio`): one
//! // process takes several invocations at once; they share the state and the sink, and
//! // each answers with its own checkpoint.
//! // lambda_runtime::run_concurrent(track().into_service()).await?;
//! # Ok(()) }
//! ```
//!
//! The service answers each invocation as `run` does: the response, the invocation's EMF
//! metrics on standard output, an [`Error`] logged and returned (Lambda then retries the
//! whole batch). Set a subscriber yourself, e.g.
//! `lambda_runtime::tracing::init_default_subscriber()`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod aggregation;
mod batch;
pub mod chunk;
pub mod dead_letter;
pub mod decode;
mod engine;
mod error;
mod handler;
pub mod idempotency;
mod invocation;
mod lambda;
mod meta;
pub mod metrics;
mod report;
mod sequence;
pub mod settings;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod window;

pub use chunk::{Chunk, ChunkError};
pub use engine::Outcome;
pub use error::{BoxError, Error, RecordError, RecordErrorKind};
pub use handler::{ClaimedHandler, Handler, RecordHandler, WindowEndFn};
pub use invocation::Invocation;
pub use kinesis_processor_macros::kinesis_processor;
pub use lambda::{HasState, NeedsState, Processor, ProcessorService, SYNTHETIC_TIMEOUT};
pub use meta::RecordMeta;
pub use report::{BatchOutcome, BatchReport, BatchSummary, RecordOutcome};
pub use settings::OnRetriesExhausted;
pub use window::{Window, WindowState};

/// What the attribute's expansion calls; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use serde::de::IgnoredAny;

    use crate::decode::{Decode, Json};
    use crate::handler::{ChunkFnHandler, ClaimedHandler, FnHandler, RecordHandler};
    use crate::{ChunkError, Invocation, NeedsState, Processor, RecordError, RecordMeta};

    pub use crate::handler::{ChunkFn, RecordFn, WindowFn};
    pub use crate::handler::{WindowFnHandler, WindowStart};
    use crate::WindowState;

    /// The processor for an attributed function that takes no state.
    pub fn processor<Format, T, F>(
        name: &'static str,
        function: F,
    ) -> Processor<impl RecordHandler<Payload = T, State = ()> + ClaimedHandler>
    where
        Format: Decode<T> + 'static,
        T: Send + 'static,
        F: for<'a> RecordFn<'a, T, ()> + Send + Sync + 'static,
    {
        Processor::new(FnHandler::<F, T, (), Format>::new(name, function), ())
    }

    /// The processor for an attributed function that takes a state `&S`, waiting for
    /// `.state(..)`.
    pub fn processor_needing_state<Format, T, S, F>(
        name: &'static str,
        function: F,
    ) -> Processor<impl RecordHandler<Payload = T, State = S> + ClaimedHandler, NeedsState>
    where
        Format: Decode<T> + 'static,
        T: Send + 'static,
        S: Send + Sync + 'static,
        F: for<'a> RecordFn<'a, T, S> + Send + Sync + 'static,
    {
        Processor::new(FnHandler::<F, T, S, Format>::new(name, function), NeedsState)
    }

    /// The processor for an attributed chunk function that takes no state; `size` is its
    /// `chunk`, checked by the attribute.
    pub fn chunk_processor<Format, T, F>(
        name: &'static str,
        size: usize,
        function: F,
    ) -> Processor<impl RecordHandler<Payload = T, State = ()>>
    where
        Format: Decode<T> + 'static,
        T: Send + 'static,
        F: for<'a> ChunkFn<'a, T, ()> + Send + Sync + 'static,
    {
        Processor::new(ChunkFnHandler::<F, T, (), Format>::new(name, size, function), ())
    }

    /// The processor for an attributed chunk function that takes a state `&S`, waiting
    /// for `.state(..)`.
    pub fn chunk_processor_needing_state<Format, T, S, F>(
        name: &'static str,
        size: usize,
        function: F,
    ) -> Processor<impl RecordHandler<Payload = T, State = S>, NeedsState>
    where
        Format: Decode<T> + 'static,
        T: Send + 'static,
        S: Send + Sync + 'static,
        F: for<'a> ChunkFn<'a, T, S> + Send + Sync + 'static,
    {
        let handler = ChunkFnHandler::<F, T, S, Format>::new(name, size, function);
        Processor::new(handler, NeedsState)
    }

    /// A window function's processor before its window end; `Slot` is its state slot.
    pub type WindowProcessor<F, T, W, S, Format, Slot> =
        Processor<WindowStart<F, T, W, S, Format>, Slot>;

    /// What an attributed window function is, as the constructor's return type names it.
    pub trait WindowFnBound<T, W, S>:
        for<'a> WindowFn<'a, T, W, S> + Send + Sync + 'static
    {
    }

    impl<T, W, S, F: for<'a> WindowFn<'a, T, W, S> + Send + Sync + 'static> WindowFnBound<T, W, S>
        for F
    {
    }

    /// The processor for an attributed window function that takes no shared state.
    pub fn window_processor<Format, T, W, F>(
        name: &'static str,
        function: F,
    ) -> WindowProcessor<impl WindowFnBound<T, W, ()>, T, W, (), Format, ()>
    where
        Format: Decode<T> + 'static,
        T: Send + 'static,
        W: WindowState,
        F: for<'a> WindowFn<'a, T, W, ()> + Send + Sync + 'static,
    {
        Processor::new(WindowFnHandler::<F, T, W, (), Format, _>::new(name, function), ())
    }

    /// The processor for an attributed window function that takes a shared state `&S`,
    /// waiting for `.state(..)`.
    pub fn window_processor_needing_state<Format, T, W, S, F>(
        name: &'static str,
        function: F,
    ) -> WindowProcessor<impl WindowFnBound<T, W, S>, T, W, S, Format, NeedsState>
    where
        Format: Decode<T> + 'static,
        T: Send + 'static,
        W: WindowState,
        S: Send + Sync + 'static,
        F: for<'a> WindowFn<'a, T, W, S> + Send + Sync + 'static,
    {
        Processor::new(WindowFnHandler::<F, T, W, S, Format, _>::new(name, function), NeedsState)
    }

    /// What the constructor of a function with signature errors returns, so that its call
    /// sites type-check while the errors are fixed. It never runs: the crate does not compile.
    pub fn unusable(
        name: &'static str,
    ) -> Processor<impl RecordHandler<State = ()> + ClaimedHandler> {
        Processor::new(FnHandler::<_, IgnoredAny, (), Json>::new(name, unusable_call), ())
    }

    /// [`unusable`], for a function that takes a state `&S`.
    pub fn unusable_needing_state<S: Send + Sync + 'static>(
        name: &'static str,
    ) -> Processor<impl RecordHandler<State = S> + ClaimedHandler, NeedsState> {
        Processor::new(FnHandler::<_, IgnoredAny, S, Json>::new(name, unusable_call), NeedsState)
    }

    fn unusable_call<S>(
        _: IgnoredAny,
        _: &RecordMeta<'_>,
        _: &Invocation,
        _: &S,
    ) -> std::future::Ready<Result<(), RecordError>> {
        std::future::ready(Err(RecordError::reject("the processing function did not compile")))
    }

    /// [`unusable`], for a window function; `slot` is `()` or [`NeedsState`].
    pub fn unusable_window<W: WindowState, S: Send + Sync + 'static, Slot>(
        name: &'static str,
        slot: Slot,
    ) -> WindowProcessor<impl WindowFnBound<IgnoredAny, W, S>, IgnoredAny, W, S, Json, Slot> {
        let handler = WindowFnHandler::<_, IgnoredAny, W, S, Json, _>::new(name, unusable_fold);
        Processor::new(handler, slot)
    }

    fn unusable_fold<W, S>(
        _: IgnoredAny,
        _: &mut W,
        _: &RecordMeta<'_>,
        _: &Invocation,
        _: &S,
    ) -> std::future::Ready<Result<(), RecordError>> {
        std::future::ready(Err(RecordError::reject("the processing function did not compile")))
    }

    /// A duration the macro checked at compile time.
    pub const fn millis(millis: u64) -> std::time::Duration {
        std::time::Duration::from_millis(millis)
    }

    /// Converts what the user's function returned.
    pub fn into_record_result<R: RecordResult>(result: R) -> Result<(), RecordError> {
        result.into_record_result()
    }

    /// What a processing function may return.
    #[diagnostic::on_unimplemented(
        message = "a `#[kinesis_processor]` function must return `Result<(), E>` with \
                   `E: Into<RecordError>`, not `{Self}`",
        label = "the function's return type",
        note = "return `Result<(), RecordError>`, or any `Result<(), E>` where `E` is a \
                `std::error::Error + Send + Sync + 'static` (retryable)"
    )]
    pub trait RecordResult {
        /// The result as the engine takes it.
        fn into_record_result(self) -> Result<(), RecordError>;
    }

    impl<E: Into<RecordError>> RecordResult for Result<(), E> {
        fn into_record_result(self) -> Result<(), RecordError> {
            self.map_err(Into::into)
        }
    }

    /// Converts what the user's chunk function returned.
    pub fn into_chunk_result<R: ChunkResult>(result: R) -> Result<(), ChunkError> {
        result.into_chunk_result()
    }

    /// What a chunk function may return.
    #[diagnostic::on_unimplemented(
        message = "a `#[kinesis_processor(chunk = N)]` function must return `Result<(), E>` \
                   with `E: Into<ChunkError>`, not `{Self}`",
        label = "the function's return type",
        note = "return `Result<(), ChunkError>`: `?` makes any error a failure of the whole \
                chunk, and `ChunkError::records` names the records that failed"
    )]
    pub trait ChunkResult {
        /// The result as the engine takes it.
        fn into_chunk_result(self) -> Result<(), ChunkError>;
    }

    impl<E: Into<ChunkError>> ChunkResult for Result<(), E> {
        fn into_chunk_result(self) -> Result<(), ChunkError> {
            self.map_err(Into::into)
        }
    }
}
