"""Connection-specific fields in a request are a stream error (RFC 9113 §8.2.2): RST_STREAM
PROTOCOL_ERROR for that stream, and the connection goes on."""

from h2test import *

c = Client()
bad = [
    ("connection", "keep-alive"),
    ("transfer-encoding", "chunked"),
    ("te", "gzip"),
    ("upgrade", "h2c"),
    ("keep-alive", "timeout=5"),
]
sid = 1
for field in bad:
    c.conn.send_headers(sid, request_headers("/bad", extra=[field]), end_stream=True)
    c.flush()
    events = c.until(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == sid)
    if events[-1].error_code != PROTOCOL_ERROR:
        fail("%r: reset with %r, not PROTOCOL_ERROR" % (field, events[-1].error_code))
    sid += 2
status, _, body, _ = c.get("/after-resets", stream_id=sid)
if status != 200:
    fail("GET after the resets: %r %r" % (status, body))
ok("%d streams reset with PROTOCOL_ERROR, then a GET on the same connection" % len(bad))
