//! [`Handler`]: the processing function as the engine sees it.
//!
//! The attribute turns `async fn NAME(payload: T, meta: &RecordMeta, state: &S)` into a
//! value implementing this trait: a decoder for `T` and a call that borrows the record's
//! metadata, the invocation and the shared state for the duration of one attempt. The
//! engine calls it without boxing: the future's type is the function's own. A window
//! function (`#[kinesis_processor(window)]`) also borrows the window state it folds into,
//! and carries the window-end function.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use crate::chunk::{Chunk, ChunkError};
use crate::decode::Decode;
use crate::error::{BoxError, RecordError};
use crate::invocation::Invocation;
use crate::meta::RecordMeta;
use crate::window::{Window, WindowState};

/// The future of a window-end function, boxed: it runs once per window.
pub type WindowEndFuture<'a> = Pin<Box<dyn Future<Output = Result<(), RecordError>> + Send + 'a>>;

/// A per-record processing function, as produced by `#[kinesis_processor]`.
///
/// You do not implement this by hand: write the function and put the attribute on it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a record handler",
    label = "not produced by `#[kinesis_processor]`",
    note = "put `#[kinesis_processor]` on an `async fn NAME(payload: T) -> Result<(), E>` and \
            call `NAME()` to get a `Processor`"
)]
pub trait Handler: sealed::Sealed + Send + Sync + 'static {
    /// The decoded payload, the function's first parameter.
    type Payload: Send;
    /// The shared state given with [`Processor::state`](crate::Processor::state); `()` when
    /// the function takes none. Records running at once share it, on any thread.
    type State: Send + Sync;
    /// What the function folds records into: the window state of a window function, `()`
    /// for a per-record one.
    type Window: WindowState;
    /// Whether the function folds records into a window state.
    const WINDOWED: bool;
    /// Whether the function takes chunks of records ([`Chunk`]) rather than one record.
    const CHUNKED: bool;
    /// The future of one attempt: `Send`, so that `lambda_runtime` may run invocations on
    /// any thread, several at once in its concurrent mode.
    type Future<'a>: Future<Output = Result<(), RecordError>> + Send + 'a
    where
        Self: 'a;
    /// The future of one call of a chunk function.
    type ChunkFuture<'a>: Future<Output = Result<(), ChunkError>> + Send + 'a
    where
        Self: 'a;

    /// The function's name, for logs, metrics and messages.
    fn name(&self) -> &'static str;

    /// Decodes a record's bytes into the payload.
    fn decode(&self, data: &[u8]) -> Result<Self::Payload, BoxError>;

    /// Starts one attempt at processing a record; a window function folds it into
    /// `window`.
    fn call<'a>(
        &'a self,
        payload: Self::Payload,
        window: &'a mut Self::Window,
        meta: &'a RecordMeta<'a>,
        invocation: &'a Invocation,
        state: &'a Self::State,
    ) -> Self::Future<'a>;

    /// Runs the window-end function on a window's finished state.
    fn end_window<'a>(
        &'a self,
        finished: Self::Window,
        window: &'a Window,
        state: &'a Self::State,
    ) -> WindowEndFuture<'a>;

    /// The most records in one chunk of a chunk function; 1 for any other.
    fn chunk_size(&self) -> usize;

    /// Starts one attempt at processing a chunk of records.
    fn call_chunk<'a>(
        &'a self,
        chunk: Chunk<'a, Self::Payload>,
        invocation: &'a Invocation,
        state: &'a Self::State,
    ) -> Self::ChunkFuture<'a>;
}

/// What a function that does not take chunks answers if called with one: the engine
/// never does.
type NoChunks = std::future::Ready<Result<(), ChunkError>>;

fn no_chunks() -> NoChunks {
    std::future::ready(Err(ChunkError::whole(RecordError::reject("not a chunk function"))))
}

/// What a chunk function answers if called with one record: the engine never does.
type NoRecords = std::future::Ready<Result<(), RecordError>>;

fn no_records() -> NoRecords {
    std::future::ready(Err(RecordError::reject("a chunk function takes chunks")))
}

/// Keeps [`Handler`] implemented by the attribute's expansion alone, so that it can grow.
mod sealed {
    pub trait Sealed {}
}

/// A function that processes one record: `Fn(T, &RecordMeta, &Invocation, &S) -> impl Future`.
///
/// Spelled as a trait with the lifetime as a parameter so that `for<'a> RecordFn<'a, ..>`
/// can name a future that borrows its arguments, which `Fn` bounds alone cannot.
pub trait RecordFn<'a, T, S: 'a>:
    Fn(T, &'a RecordMeta<'a>, &'a Invocation, &'a S) -> <Self as RecordFn<'a, T, S>>::Future
{
    /// The future of one call.
    type Future: Future<Output = Result<(), RecordError>> + Send + 'a;
}

impl<'a, T, S: 'a, F, Fut> RecordFn<'a, T, S> for F
where
    F: Fn(T, &'a RecordMeta<'a>, &'a Invocation, &'a S) -> Fut,
    Fut: Future<Output = Result<(), RecordError>> + Send + 'a,
{
    type Future = Fut;
}

/// The [`Handler`] made from a function and a payload format.
pub struct FnHandler<F, T, S, Format> {
    name: &'static str,
    function: F,
    _types: PhantomData<fn(T, &S) -> Format>,
}

impl<F, T, S, Format> FnHandler<F, T, S, Format> {
    pub(crate) fn new(name: &'static str, function: F) -> Self {
        Self { name, function, _types: PhantomData }
    }
}

impl<F, T, S, Format> sealed::Sealed for FnHandler<F, T, S, Format> {}

impl<F, T, S, Format> Handler for FnHandler<F, T, S, Format>
where
    F: for<'a> RecordFn<'a, T, S> + Send + Sync + 'static,
    T: Send + 'static,
    S: Send + Sync + 'static,
    Format: Decode<T> + 'static,
{
    type Payload = T;
    type State = S;
    type Window = ();
    const WINDOWED: bool = false;
    const CHUNKED: bool = false;
    type Future<'a>
        = <F as RecordFn<'a, T, S>>::Future
    where
        Self: 'a;
    type ChunkFuture<'a>
        = NoChunks
    where
        Self: 'a;

    fn name(&self) -> &'static str {
        self.name
    }

    fn decode(&self, data: &[u8]) -> Result<T, BoxError> {
        Format::decode(data)
    }

    fn call<'a>(
        &'a self,
        payload: T,
        _: &'a mut (),
        meta: &'a RecordMeta<'a>,
        invocation: &'a Invocation,
        state: &'a S,
    ) -> Self::Future<'a> {
        (self.function)(payload, meta, invocation, state)
    }

    fn end_window<'a>(&'a self, _: (), _: &'a Window, _: &'a S) -> WindowEndFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn chunk_size(&self) -> usize {
        1
    }

    fn call_chunk<'a>(&'a self, _: Chunk<'a, T>, _: &'a Invocation, _: &'a S) -> NoChunks {
        no_chunks()
    }
}

/// The handler of a per-record function (not a window function): its records of distinct
/// partition keys may run at once, with [`concurrency`](crate::Processor::concurrency).
#[diagnostic::on_unimplemented(
    message = "`concurrency` does not apply to a window processor",
    label = "a window processor folds one shard's records in order, one at a time",
    note = "remove `.concurrency(..)`: a window state is one value per shard, folded in \
            stream order"
)]
pub trait RecordHandler: Handler {}

impl<F, T, S, Format> RecordHandler for FnHandler<F, T, S, Format> where Self: Handler {}

/// A function that folds one record into a window state: `Fn(T, &mut W, &RecordMeta,
/// &Invocation, &S) -> impl Future`.
pub trait WindowFn<'a, T, W: 'a, S: 'a>:
    Fn(
    T,
    &'a mut W,
    &'a RecordMeta<'a>,
    &'a Invocation,
    &'a S,
) -> <Self as WindowFn<'a, T, W, S>>::Future
{
    /// The future of one call.
    type Future: Future<Output = Result<(), RecordError>> + Send + 'a;
}

impl<'a, T, W: 'a, S: 'a, F, Fut> WindowFn<'a, T, W, S> for F
where
    F: Fn(T, &'a mut W, &'a RecordMeta<'a>, &'a Invocation, &'a S) -> Fut,
    Fut: Future<Output = Result<(), RecordError>> + Send + 'a,
{
    type Future = Fut;
}

/// A window-end function: `async fn(W, &Window, &S) -> Result<(), E>` with
/// `E: Into<RecordError>`, given to [`Processor::on_window_end`](crate::Processor::on_window_end).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a window-end function for this processor",
    label = "expected an `async fn(W, &Window, &S) -> Result<(), E>`",
    note = "the window-end function takes the finished window state by value, `&Window`, and \
            the processor's shared state `&S` (`&()` when it has none), and returns \
            `Result<(), E>` with `E: Into<RecordError>`"
)]
pub trait WindowEndFn<'a, W, S: 'a>:
    Fn(W, &'a Window, &'a S) -> <Self as WindowEndFn<'a, W, S>>::Future
{
    /// The future of one call.
    type Future: Future<Output = Result<(), Self::Error>> + Send + 'a;
    /// What the function's `Result` carries on failure.
    type Error: Into<RecordError>;
}

impl<'a, W, S: 'a, F, Fut, E> WindowEndFn<'a, W, S> for F
where
    F: Fn(W, &'a Window, &'a S) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'a,
    E: Into<RecordError>,
{
    type Future = Fut;
    type Error = E;
}

/// The window end of a window processor that has none: the finished state is dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoWindowEnd;

/// What a window processor does at a window's end: nothing ([`NoWindowEnd`]) or a
/// [`WindowEndFn`].
pub trait EndWindow<W, S>: Send + Sync + 'static {
    /// Runs at the end of a window.
    fn end<'a>(&'a self, finished: W, window: &'a Window, state: &'a S) -> WindowEndFuture<'a>;
}

impl<W, S> EndWindow<W, S> for NoWindowEnd {
    fn end<'a>(&'a self, _: W, _: &'a Window, _: &'a S) -> WindowEndFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A window-end function, as [`Processor::on_window_end`](crate::Processor::on_window_end)
/// keeps it.
pub struct WithWindowEnd<E>(pub(crate) E);

impl<W: Send + 'static, S: Sync + 'static, E> EndWindow<W, S> for WithWindowEnd<E>
where
    E: for<'a> WindowEndFn<'a, W, S> + Send + Sync + 'static,
{
    fn end<'a>(&'a self, finished: W, window: &'a Window, state: &'a S) -> WindowEndFuture<'a> {
        let call = (self.0)(finished, window, state);
        Box::pin(async move { call.await.map_err(Into::into) })
    }
}

/// A window function's handler before its window end, as its constructor returns it.
pub type WindowStart<F, T, W, S, Format> = WindowFnHandler<F, T, W, S, Format, NoWindowEnd>;

/// A window function's handler with the window end `E`.
pub type WindowEnded<F, T, W, S, Format, E> = WindowFnHandler<F, T, W, S, Format, WithWindowEnd<E>>;

/// The [`Handler`] made from a window function, a payload format and a window end.
pub struct WindowFnHandler<F, T, W, S, Format, End> {
    name: &'static str,
    function: F,
    end: End,
    _types: PhantomData<fn(T, &W, &S) -> Format>,
}

impl<F, T, W, S, Format> WindowFnHandler<F, T, W, S, Format, NoWindowEnd> {
    pub(crate) fn new(name: &'static str, function: F) -> Self {
        Self { name, function, end: NoWindowEnd, _types: PhantomData }
    }
}

impl<F, T, W, S, Format> WindowFnHandler<F, T, W, S, Format, NoWindowEnd> {
    /// The same function with a window end.
    pub(crate) fn with_end<E>(
        self,
        end: E,
    ) -> WindowFnHandler<F, T, W, S, Format, WithWindowEnd<E>> {
        let WindowFnHandler { name, function, _types, .. } = self;
        WindowFnHandler { name, function, end: WithWindowEnd(end), _types }
    }
}

impl<F, T, W, S, Format, End> sealed::Sealed for WindowFnHandler<F, T, W, S, Format, End> {}

impl<F, T, W, S, Format, End> Handler for WindowFnHandler<F, T, W, S, Format, End>
where
    F: for<'a> WindowFn<'a, T, W, S> + Send + Sync + 'static,
    T: Send + 'static,
    W: WindowState,
    S: Send + Sync + 'static,
    Format: Decode<T> + 'static,
    End: EndWindow<W, S>,
{
    type Payload = T;
    type State = S;
    type Window = W;
    const WINDOWED: bool = true;
    const CHUNKED: bool = false;
    type Future<'a>
        = <F as WindowFn<'a, T, W, S>>::Future
    where
        Self: 'a;
    type ChunkFuture<'a>
        = NoChunks
    where
        Self: 'a;

    fn name(&self) -> &'static str {
        self.name
    }

    fn decode(&self, data: &[u8]) -> Result<T, BoxError> {
        Format::decode(data)
    }

    fn call<'a>(
        &'a self,
        payload: T,
        window: &'a mut W,
        meta: &'a RecordMeta<'a>,
        invocation: &'a Invocation,
        state: &'a S,
    ) -> Self::Future<'a> {
        (self.function)(payload, window, meta, invocation, state)
    }

    fn end_window<'a>(
        &'a self,
        finished: W,
        window: &'a Window,
        state: &'a S,
    ) -> WindowEndFuture<'a> {
        self.end.end(finished, window, state)
    }
    fn chunk_size(&self) -> usize {
        1
    }

    fn call_chunk<'a>(&'a self, _: Chunk<'a, T>, _: &'a Invocation, _: &'a S) -> NoChunks {
        no_chunks()
    }
}

/// The handler of a function whose records the idempotency guard claims one at a time:
/// any but a chunk function.
#[diagnostic::on_unimplemented(
    message = "idempotency does not apply to a chunk processor",
    label = "a chunk function writes many records in one call; its records are not claimed \
             one at a time",
    note = "remove `.idempotency(..)`, or make the bulk write idempotent itself (keyed by \
            each record's sequence number)"
)]
pub trait ClaimedHandler: Handler {}

impl<F, T, S, Format> ClaimedHandler for FnHandler<F, T, S, Format> where Self: Handler {}

impl<F, T, W, S, Format, End> ClaimedHandler for WindowFnHandler<F, T, W, S, Format, End> where
    Self: Handler
{
}

/// A function that processes a chunk of records: `Fn(Chunk<T>, &Invocation, &S) -> impl
/// Future`.
pub trait ChunkFn<'a, T: 'a, S: 'a>:
    Fn(Chunk<'a, T>, &'a Invocation, &'a S) -> <Self as ChunkFn<'a, T, S>>::Future
{
    /// The future of one call.
    type Future: Future<Output = Result<(), ChunkError>> + Send + 'a;
}

impl<'a, T: 'a, S: 'a, F, Fut> ChunkFn<'a, T, S> for F
where
    F: Fn(Chunk<'a, T>, &'a Invocation, &'a S) -> Fut,
    Fut: Future<Output = Result<(), ChunkError>> + Send + 'a,
{
    type Future = Fut;
}

/// The [`Handler`] made from a chunk function, its chunk size and a payload format.
pub struct ChunkFnHandler<F, T, S, Format> {
    name: &'static str,
    size: usize,
    function: F,
    _types: PhantomData<fn(T, &S) -> Format>,
}

impl<F, T, S, Format> ChunkFnHandler<F, T, S, Format> {
    pub(crate) fn new(name: &'static str, size: usize, function: F) -> Self {
        Self { name, size: size.clamp(1, crate::chunk::MAX_CHUNK), function, _types: PhantomData }
    }
}

impl<F, T, S, Format> sealed::Sealed for ChunkFnHandler<F, T, S, Format> {}

impl<F, T, S, Format> RecordHandler for ChunkFnHandler<F, T, S, Format> where Self: Handler {}

impl<F, T, S, Format> Handler for ChunkFnHandler<F, T, S, Format>
where
    F: for<'a> ChunkFn<'a, T, S> + Send + Sync + 'static,
    T: Send + 'static,
    S: Send + Sync + 'static,
    Format: Decode<T> + 'static,
{
    type Payload = T;
    type State = S;
    type Window = ();
    const WINDOWED: bool = false;
    const CHUNKED: bool = true;
    type Future<'a>
        = NoRecords
    where
        Self: 'a;
    type ChunkFuture<'a>
        = <F as ChunkFn<'a, T, S>>::Future
    where
        Self: 'a;

    fn name(&self) -> &'static str {
        self.name
    }

    fn decode(&self, data: &[u8]) -> Result<T, BoxError> {
        Format::decode(data)
    }

    fn call<'a>(
        &'a self,
        _: T,
        _: &'a mut (),
        _: &'a RecordMeta<'a>,
        _: &'a Invocation,
        _: &'a S,
    ) -> NoRecords {
        no_records()
    }

    fn end_window<'a>(&'a self, _: (), _: &'a Window, _: &'a S) -> WindowEndFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn chunk_size(&self) -> usize {
        self.size
    }

    fn call_chunk<'a>(
        &'a self,
        chunk: Chunk<'a, T>,
        invocation: &'a Invocation,
        state: &'a S,
    ) -> Self::ChunkFuture<'a> {
        (self.function)(chunk, invocation, state)
    }
}
