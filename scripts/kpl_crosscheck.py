#!/usr/bin/env python3
"""Cross-checks KPL aggregation with the official aws-kinesis-agg library.

  make-event --seed N --count M --out FILE
      Generates M random user records, aggregates them with the library's
      RecordAggregator, and writes {"event": <Lambda Kinesis event>, "records": [...]}.
  deaggregate --input FILE
      Reads {"event": ...} and prints the user records the library's deaggregator yields.

Run by the Rust test tests/tests/kpl_python.rs, under scripts/test-all.
"""
import argparse
import base64
import json
import random
import sys

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

SHARD = "shardId-000000000003"
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/crosscheck"


def random_records(seed, count):
    """Mostly small records (5% empty), plus a few large ones up to near the 1 MiB limit."""
    rng = random.Random(seed)
    keys = ["user-%d" % n for n in range(rng.randint(5, 60))] + ["ключ-%d" % n for n in range(3)]
    large = {rng.randrange(count): size for size in (200_000, 400_000, 700_000, 1_000_000)}
    records = []
    for index in range(count):
        ehk = str(rng.getrandbits(128)) if rng.random() < 0.3 else None
        if index in large:
            size = large[index]
        elif rng.random() < 0.05:
            size = 0
        else:
            size = rng.randint(1, 2_000)
        records.append((rng.choice(keys), ehk, rng.randbytes(size)))
    return records


def kinesis_record(sequence, partition_key, data, explicit_hash_key=None):
    kinesis = {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": partition_key,
        "sequenceNumber": str(sequence),
        "data": base64.b64encode(data).decode(),
        "approximateArrivalTimestamp": 1764126000.5,
    }
    if explicit_hash_key is not None:
        kinesis["explicitHashKey"] = explicit_hash_key
    return {
        "kinesis": kinesis,
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": "%s:%d" % (SHARD, sequence),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": ARN,
    }


def make_event(seed, count):
    records = random_records(seed, count)
    aggregator = RecordAggregator()
    containers = []
    for partition_key, ehk, data in records:
        full = aggregator.add_user_record(partition_key, data, ehk)
        if full is not None:
            containers.append(full.get_contents())
    last = aggregator.clear_and_get()
    if last is not None:
        containers.append(last.get_contents())
    sequence = 49590338271490256608559692538361571095921575989136588898
    event_records = []
    for partition_key, ehk, data in containers:
        event_records.append(kinesis_record(sequence, partition_key, data, ehk or None))
        sequence += 10_000_000_000
    return {
        "event": {"Records": event_records},
        "records": [
            {"partitionKey": pk, "explicitHashKey": ehk, "data": base64.b64encode(data).decode()}
            for pk, ehk, data in records
        ],
    }


def deaggregate(document):
    out = []
    for record in iter_deaggregate_records(document["event"]["Records"]):
        kinesis = record["kinesis"]
        data = kinesis["data"]
        out.append({
            "sequenceNumber": kinesis["sequenceNumber"],
            "subSequenceNumber": kinesis.get("subSequenceNumber"),
            "partitionKey": kinesis["partitionKey"],
            "explicitHashKey": kinesis.get("explicitHashKey"),
            "data": data.decode() if isinstance(data, bytes) else data,
        })
    return out


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-event")
    make.add_argument("--seed", type=int, required=True)
    make.add_argument("--count", type=int, required=True)
    make.add_argument("--out", required=True)
    deagg = commands.add_parser("deaggregate")
    deagg.add_argument("--input", required=True)
    args = parser.parse_args()
    if args.command == "make-event":
        with open(args.out, "w") as out:
            json.dump(make_event(args.seed, args.count), out)
    else:
        with open(args.input) as source:
            json.dump(deaggregate(json.load(source)), sys.stdout)


if __name__ == "__main__":
    main()
