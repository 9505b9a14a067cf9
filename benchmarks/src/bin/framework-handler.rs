//! The framework as a Lambda function: the throughput benchmark's no-op processor behind
//! the real `lambda_runtime` loop, for the cold-start and memory measurements.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    kinesis_processor_benchmarks::contenders::noop().run().await
}
