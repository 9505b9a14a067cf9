use kinesis_processor::kinesis_processor;

#[kinesis_processor(format = text)]
async fn log(line: String) {
    println!("{line}");
}

fn main() {}
