//! [`Handler`]: the processing function as the engine sees it.
//!
//! The attribute turns `async fn NAME(payload: T, meta: &RecordMeta, state: &S)` into a
//! value implementing this trait: a decoder for `T` and a call that borrows the record's
//! metadata, the invocation and the shared state for the duration of one attempt. The
//! engine calls it without boxing: the future's type is the function's own.

use std::future::Future;
use std::marker::PhantomData;

use crate::decode::Decode;
use crate::error::{BoxError, RecordError};
use crate::invocation::Invocation;
use crate::meta::RecordMeta;

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
    /// The future of one attempt: `Send`, so that `lambda_runtime` may run invocations on
    /// any thread, several at once in its concurrent mode.
    type Future<'a>: Future<Output = Result<(), RecordError>> + Send + 'a
    where
        Self: 'a;

    /// The function's name, for logs, metrics and messages.
    fn name(&self) -> &'static str;

    /// Decodes a record's bytes into the payload.
    fn decode(&self, data: &[u8]) -> Result<Self::Payload, BoxError>;

    /// Starts one attempt at processing a record.
    fn call<'a>(
        &'a self,
        payload: Self::Payload,
        meta: &'a RecordMeta<'a>,
        invocation: &'a Invocation,
        state: &'a Self::State,
    ) -> Self::Future<'a>;
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
    type Future<'a>
        = <F as RecordFn<'a, T, S>>::Future
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
        meta: &'a RecordMeta<'a>,
        invocation: &'a Invocation,
        state: &'a S,
    ) -> Self::Future<'a> {
        (self.function)(payload, meta, invocation, state)
    }
}
