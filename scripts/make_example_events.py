#!/usr/bin/env python3
"""Writes the sample events of examples/log-filter, examples/log-to-json,
examples/page-views and examples/clicks-to-dynamodb.

log-filter's lines are KPL-aggregated with the official aws-kinesis-agg library, as a
producer using the KPL would send them. Run from the repository root with a Python that
has aws-kinesis-agg (scripts/test-all's venv): target/test-venv/bin/python scripts/make_example_events.py
"""
import base64
import json

from aws_kinesis_agg.aggregator import RecordAggregator

SHARD = "shardId-000000000002"
FIRST = 49590338271490256608559692538361571095921575989136588898


def kinesis_record(n, stream, partition_key, data, explicit_hash_key=None, shard=SHARD, arrival=None):
    sequence = str(FIRST + n * 1_000_000_000)
    kinesis = {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": partition_key,
        "sequenceNumber": sequence,
        "data": base64.b64encode(data).decode(),
        # Just after the last log line of the samples (2026-11-26T05:00:08Z) was written.
        "approximateArrivalTimestamp": arrival if arrival is not None else 1795669210.25 + n,
    }
    if explicit_hash_key:
        kinesis["explicitHashKey"] = explicit_hash_key
    return {
        "kinesis": kinesis,
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}",
    }


def aggregate(lines):
    aggregator = RecordAggregator()
    for host, line in lines:
        assert aggregator.add_user_record(host, line.encode()) is None
    partition_key, explicit_hash_key, data = aggregator.clear_and_get().get_contents()
    return partition_key, explicit_hash_key, data


syslog_a = [
    ("web-1", "<134>Nov 26 05:00:01 web-1 nginx[311]: GET /pricing 200"),
    ("db-1", "<2>Nov 26 05:00:02 db-1 kernel: Out of memory: killed process 4242 (postgres)"),
    ("web-1", "<132>Nov 26 05:00:03 web-1 nginx[311]: upstream timed out"),
    ("db-1", "<1>Nov 26 05:00:04 db-1 smartd[88]: /dev/nvme0 will fail within 24 hours"),
]
syslog_b = [
    ("api-1", "2026-11-26T05:00:05Z api-1 INFO request served in 12 ms"),
    ("api-1", "2026-11-26T05:00:06Z api-1 CRITICAL payment provider unreachable"),
    ("api-1", "stack trace line without any level"),
    ("api-1", "2026-11-26T05:00:07Z api-1 DEBUG cache warm"),
]
records = []
for n, lines in enumerate([syslog_a, syslog_b]):
    partition_key, explicit_hash_key, data = aggregate(lines)
    records.append(kinesis_record(n, "syslog", partition_key, data, explicit_hash_key))
records.append(kinesis_record(2, "syslog", "cron-1", b"<10>Nov 26 05:00:08 cron-1 CRON[7]: job backup failed twice"))
with open("examples/log-filter/events/syslog-aggregated.json", "w") as out:
    json.dump({"Records": records}, out, indent=2)
    out.write("\n")

access = [
    '203.0.113.9 - ada [26/Nov/2026:05:00:01 +0000] "GET /pricing HTTP/1.1" 200 5120',
    '198.51.100.7 - - [26/Nov/2026:05:00:02 +0000] "HEAD / HTTP/2" 304 -',
    'this line is not an access log',
    '192.0.2.44 - bob [26/Nov/2026:05:00:03 +0000] "POST /signup HTTP/1.1" 201 87',
]
records = [kinesis_record(n, "access-logs", f"host-{n % 2}", line.encode()) for n, line in enumerate(access)]
with open("examples/log-to-json/events/access-log.json", "w") as out:
    json.dump({"Records": records}, out, indent=2)
    out.write("\n")

# page-views: one shard's invocations of one tumbling window (2026-11-26T05:00:00Z, one
# minute), as Lambda sends them with TumblingWindowInSeconds: the first with an empty
# state, a later one carrying the state the first returned, and the final one (no records)
# carrying the state of both. The states are the fold the function computes.
CLICK_SHARD = "shardId-000000000003"
CLICK_STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
WINDOW_START = 1795669200  # 2026-11-26T05:00:00Z
clicks = [
    [
        ("user-17", "203.0.113.9", "/pricing"),
        ("user-4", "192.0.2.44", "/docs/getting-started"),
        ("user-17", "203.0.113.9", "/signup?ref=pricing"),
        ("user-23", "198.51.100.7", "/pricing?ref=ad"),
    ],
    [
        ("user-4", "192.0.2.44", "/docs/getting-started#install"),
        ("user-99", None, "<html>not a click</html>"),  # not JSON: dead-lettered
        ("user-8", "198.51.100.20", "/pricing"),
        ("user-23", "198.51.100.7", "?ref=ad"),  # no page: rejected
        ("user-17", "203.0.113.9", "/signup"),
    ],
    [],
]


def page_of(url):
    page = url.split("?")[0].split("#")[0].strip()
    return page or None


state = {}
counted = {"first_sequence_number": None, "by_page": {}}
n = 0
for number, (name, batch) in enumerate(zip(["1-first", "2-later", "3-final"], clicks)):
    records = []
    for user, ip, url in batch:
        if ip is None:
            data = url.encode()
        else:
            data = json.dumps({"user_id": user, "ip": ip, "url": url}).encode()
        record = kinesis_record(
            n, "clicks", user, data, shard=CLICK_SHARD, arrival=WINDOW_START + 2.125 + 4 * n
        )
        records.append(record)
        page = page_of(url) if ip is not None else None
        if page:
            if counted["first_sequence_number"] is None:
                counted["first_sequence_number"] = record["kinesis"]["sequenceNumber"]
            counted["by_page"][page] = counted["by_page"].get(page, 0) + 1
        n += 1
    event = {
        "Records": records,
        "window": {"start": "2026-11-26T05:00:00Z", "end": "2026-11-26T05:01:00Z"},
        "state": state,
        "shardId": CLICK_SHARD,
        "eventSourceARN": CLICK_STREAM,
        "isFinalInvokeForWindow": name == "3-final",
        "isWindowTerminatedEarly": False,
    }
    with open(f"examples/page-views/events/window-{name}.json", "w") as out:
        json.dump(event, out, indent=2)
        out.write("\n")
    # What the function returns after this invocation, and Lambda sends with the next.
    state = {"version": 1, "value": json.loads(json.dumps(counted, sort_keys=True))}

# clicks-to-dynamodb: one batch of 30 records from one shard: the function's chunks are 25
# clicks and 4. Among them: a record that is not JSON (dead-lettered as undecodable), a
# click with an empty click_id (rejected: DynamoDB refuses an empty key) and a producer's
# retry of the click before it (the same key and data: one item).
CLICK_USERS = ["user-17", "user-4", "user-23", "user-8", "user-42"]
CLICK_URLS = ["/pricing", "/docs/getting-started", "/signup", "/blog/kinesis-in-rust", "/"]
records = []
for n in range(30):
    user = CLICK_USERS[n % 5]
    click = {
        "click_id": f"click-{1001 + n}",
        "user_id": user,
        "url": CLICK_URLS[n % 5],
        "at": f"2026-11-26T05:00:{n:02d}Z",
    }
    data = json.dumps(click).encode()
    if n == 11:
        data = b"<html>not a click</html>"
    if n == 17:
        data = json.dumps(dict(click, click_id="")).encode()
    if n == 23:
        user, data = previous
    previous = (user, data)
    records.append(
        kinesis_record(n, "clicks", user, data, shard=CLICK_SHARD, arrival=WINDOW_START + 0.5 + n)
    )
with open("examples/clicks-to-dynamodb/events/clicks.json", "w") as out:
    json.dump({"Records": records}, out, indent=2)
    out.write("\n")
