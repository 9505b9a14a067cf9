use kinesis_processor::kinesis_processor;

#[kinesis_processor]
struct Click;

fn main() {}
