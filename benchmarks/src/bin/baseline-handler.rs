//! The hand-written baseline as a Lambda function: `aws_lambda_events::KinesisEvent` in,
//! `KinesisEventResponse` out, the same per-record work as the framework's no-op processor.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{service_fn, Error, LambdaEvent};

async fn handle(event: LambdaEvent<KinesisEvent>) -> Result<KinesisEventResponse, Error> {
    Ok(kinesis_processor_benchmarks::contenders::baseline_response(&event.payload))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(handle)).await
}
