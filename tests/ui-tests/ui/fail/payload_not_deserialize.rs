use kinesis_processor::{kinesis_processor, RecordError};

struct Click {
    url: String,
}

#[kinesis_processor(format = json)]
async fn track(click: Click) -> Result<(), RecordError> {
    let _ = click.url;
    Ok(())
}

fn main() {}
