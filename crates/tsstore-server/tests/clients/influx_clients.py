"""The official InfluxDB Python clients writing to tsstore unchanged:
`influxdb` (1.x, InfluxDBClient.write_points, plain and gzip) and
`influxdb-client` (2.x, write_api with Point, gzip). Prints one JSON object
with what each client was told; the Rust test (tests/line_protocol.rs)
reads the stores back.

usage: influx_clients.py PORT KEY_V1 STORE_V1 KEY_V2 STORE_V2 BASE_NS COUNT
"""

import json
import sys

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as InfluxDBClient2, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

port, key1, store1, key2, store2, base, count = sys.argv[1:8]
port, base, count = int(port), int(base), int(count)
seen = {}

# 1.x: the key is the password, the store the database; half the points
# plain, half gzip, each in batches as the client cuts them.
half = count // 2
for gzip, start in ((False, 0), (True, half)):
    client = InfluxDBClient(
        host="127.0.0.1", port=port, username="gateway", password=key1, database=store1, gzip=gzip
    )
    points = [
        {
            "measurement": "weather",
            "tags": {"site": "roof", "unit": "c 1"},
            "time": base + i * 1_000_000_000,
            "fields": {"temp": 20.5 + i, "hum": 40 + i, "ok": i % 2 == 0, "note": 'say "hi"'},
        }
        for i in range(start, start + half)
    ]
    seen[f"v1_gzip_{str(gzip).lower()}"] = client.write_points(points, batch_size=100)
try:
    InfluxDBClient(host="127.0.0.1", port=port, username="u", password="wrong", database=store1).write_points(
        [{"measurement": "m", "fields": {"v": 1}}]
    )
    seen["v1_bad_key"] = "accepted"
except InfluxDBClientError as e:
    seen["v1_bad_key"] = e.code

# 2.x: a token, a bucket, Points with ns timestamps, gzip.
with InfluxDBClient2(url=f"http://127.0.0.1:{port}", token=key2, org="gateways", enable_gzip=True) as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    points = [
        Point("power").tag("phase", "L1").field("watts", 100.25 + i).field("count", i).time(base + i, WritePrecision.NS)
        for i in range(count)
    ]
    write.write(bucket=store2, record=points)
    seen["v2"] = True
    try:
        write.write(bucket="no-such-bucket", record="m v=1")
        seen["v2_unknown_bucket"] = "accepted"
    except ApiException as e:
        seen["v2_unknown_bucket"] = e.status

print(json.dumps(seen))
