"""KPL aggregates through the official Python deaggregator (`aws-kinesis-agg`)."""

import base64
import json

from aws_kinesis_agg.deaggregator import deaggregate_records


def deaggregate_only(event: dict, expected: int) -> int:
    """Splits every aggregate and reads each user record's key and data."""
    total = 0
    users = deaggregate_records(event["Records"])
    for user in users:
        kinesis = user["kinesis"]
        total += len(kinesis["partitionKey"]) + len(base64.b64decode(kinesis["data"]))
    assert len(users) == expected, (len(users), expected)
    return total


def process(payload: bytes, expected: int) -> int:
    """From payload bytes: parse the event, de-aggregate, decode every click's JSON."""
    event = json.loads(payload)
    users = deaggregate_records(event["Records"])
    total = 0
    for user in users:
        click = json.loads(base64.b64decode(user["kinesis"]["data"]))
        total += len(click["user_id"]) + len(click["referrer"])
    assert len(users) == expected, (len(users), expected)
    return total
