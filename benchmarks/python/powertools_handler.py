"""The Python contender: Powertools for AWS Lambda's BatchProcessor over Kinesis, with a
pydantic model of the click, as its documentation shows; the record handler reads every
field, like the Rust contenders' no-op function.

Run as a script (`python powertools_handler.py EVENT`) it is the cold-start contender:
interpreter start, imports, one batch, the response on stdout.
"""

import json
import sys

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.shared.functions import base64_decode
from aws_lambda_powertools.utilities.parser.models import (
    KinesisDataStreamRecord,
    KinesisDataStreamRecordPayload,
)
from pydantic import BaseModel, field_validator


class Click(BaseModel):
    user_id: str
    ip: str
    url: str
    referrer: str
    ts: int


class ClickPayload(KinesisDataStreamRecordPayload):
    data: Click

    # Named as the parent's base64 validator so that it replaces it: base64, then JSON.
    @field_validator("data", mode="before")
    def data_base64_decode(cls, value):
        return json.loads(base64_decode(value))


class ClickRecord(KinesisDataStreamRecord):
    kinesis: ClickPayload


processor = BatchProcessor(event_type=EventType.KinesisDataStreams, model=ClickRecord)


def record_handler(record: ClickRecord) -> int:
    click = record.kinesis.data
    return (
        len(click.user_id)
        + len(click.ip)
        + len(click.url)
        + len(click.referrer)
        + (click.ts & 1)
        + len(record.kinesis.partitionKey)
    )


def handle(payload: bytes) -> bytes:
    """From invocation payload bytes to response bytes, as Lambda's Python runtime does."""
    event = json.loads(payload)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor
    )
    if response["batchItemFailures"]:
        raise RuntimeError(f"records failed: {response}")
    return json.dumps(response).encode()


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as event:
        sys.stdout.write(handle(event.read()).decode())
