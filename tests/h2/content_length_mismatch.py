"""DATA that does not add up to the request's content-length is a stream PROTOCOL_ERROR
(RFC 9113 §8.1.1), short or long; the connection goes on."""

from h2test import *

c = Client()
cases = [(1, "10", b"12345"), (3, "2", b"12345")]
for sid, length, data in cases:
    c.conn.send_headers(
        sid, request_headers("/echo", "POST", [("content-length", length)]), end_stream=False)
    c.conn.send_data(sid, data, end_stream=True)
    c.flush()
    events = c.until(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == sid)
    if events[-1].error_code != PROTOCOL_ERROR:
        fail("content-length %s with %d bytes: reset %r" % (length, len(data), events[-1].error_code))
status, _, body, _ = c.get("/echo", stream_id=5, body=b"exact", extra=[("content-length", "5")])
if status != 200 or body != b"exact":
    fail("a POST with the right length: %r %r" % (status, body))
ok("short and long bodies reset, an exact one echoed")
