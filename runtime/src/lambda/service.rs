//! [`ProcessorService`]: a processor as a tower `Service` of Lambda invocations, for
//! `lambda_runtime::run`, `Runtime::layer` and `run_concurrent`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use lambda_runtime::{LambdaEvent, Service};
use serde_json::value::RawValue;

use super::processor::{HasState, Processor};
use crate::error::Error;
use crate::handler::Handler;

/// A [`Processor`] as a `tower::Service<LambdaEvent<_>>`, made by
/// [`into_service`](Processor::into_service): what `lambda_runtime` serves.
///
/// Each call processes one invocation as [`run`](Processor::run) does in Lambda: the
/// response with its checkpoint, the invocation's EMF metrics on standard output, and an
/// [`Error`] (which makes Lambda retry the whole batch) logged before it is returned.
/// Clones share one processor, its state and its dead-letter sink, so that the service can
/// serve several invocations at once (`lambda_runtime::run_concurrent`); each invocation
/// keeps its own checkpoint.
pub struct ProcessorService<H: Handler> {
    processor: Arc<Processor<H>>,
}

impl<H: Handler, S> Processor<H, S> {
    /// The processor as a tower `Service` of Lambda invocations, to serve with your own
    /// `lambda_runtime` loop: behind tower layers, or on Lambda's concurrent mode.
    ///
    /// ```no_run
    /// use kinesis_processor::{kinesis_processor, RecordError};
    ///
    /// #[kinesis_processor(format = text)]
    /// async fn accept(_line: String) -> Result<(), RecordError> {
    ///     Ok(())
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), lambda_runtime::Error> {
    ///     lambda_runtime::tracing::init_default_subscriber();
    ///     lambda_runtime::run(accept().into_service()).await
    /// }
    /// ```
    pub fn into_service(self) -> ProcessorService<H>
    where
        S: HasState<H::State>,
    {
        ProcessorService { processor: Arc::new(self.ready()) }
    }
}

impl<H: Handler> ProcessorService<H> {
    /// The processor the service runs (to read its state in a test, say).
    pub fn processor(&self) -> &Processor<H> {
        &self.processor
    }
}

impl<H: Handler> Clone for ProcessorService<H> {
    fn clone(&self) -> Self {
        ProcessorService { processor: Arc::clone(&self.processor) }
    }
}

impl<H: Handler> Service<LambdaEvent<Box<RawValue>>> for ProcessorService<H> {
    /// What the function answers Lambda: [`BatchOutcome::lambda_response`](crate::BatchOutcome::lambda_response).
    type Response = serde_json::Value;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<serde_json::Value, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Box<RawValue>>) -> Self::Future {
        let processor = Arc::clone(&self.processor);
        Box::pin(async move { processor.answer(&event).await })
    }
}
