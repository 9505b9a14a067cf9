//! What the simulated mapping invokes: a [`Processor`], or any function of a payload for
//! testing the mapping's own rules.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::handler::Handler;
use crate::Processor;

/// How one invocation ended, as the event source mapping sees it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum InvocationResult {
    /// The function returned this response (`null` for none).
    Response(Value),
    /// The function returned an error.
    Error(String),
    /// The function ran past its timeout.
    TimedOut,
}

/// A function the mapping can invoke with a payload and a timeout.
pub trait Function {
    /// Invokes the function once.
    fn invoke(&self, payload: Vec<u8>, timeout: Duration)
        -> impl Future<Output = InvocationResult>;
}

impl<H: Handler> Function for Processor<H> {
    /// Answers as the Lambda loop does ([`Processor::respond`]), with the function timeout
    /// as the time left, and treats a run past the timeout as Lambda would: a timeout.
    async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> InvocationResult {
        let request_id = "simulated-invocation";
        match tokio::time::timeout(timeout, self.respond(payload, request_id, timeout)).await {
            Ok(Ok(outcome)) => InvocationResult::Response(outcome.lambda_response()),
            Ok(Err(error)) => InvocationResult::Error(error.to_string()),
            Err(_) => InvocationResult::TimedOut,
        }
    }
}

/// A function made of a closure of the payload, for testing the mapping's rules with
/// responses a processor would never give.
///
/// ```
/// use kinesis_processor::testing::{FnFunction, InvocationResult};
/// let always_ok = FnFunction(|_payload: Vec<u8>| async { InvocationResult::Response(serde_json::Value::Null) });
/// # let _ = always_ok;
/// ```
pub struct FnFunction<F>(pub F);

impl<F, Fut> Function for FnFunction<F>
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: Future<Output = InvocationResult>,
{
    async fn invoke(&self, payload: Vec<u8>, _timeout: Duration) -> InvocationResult {
        (self.0)(payload).await
    }
}
