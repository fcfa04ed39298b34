"""A backend's 103 Early Hints reaches an HTTP/2 client as an interim HEADERS frame (RFC 9113
§8.1), with its Link field, before the final response on the same stream."""

from h2test import *

c = Client()
sid = c.conn.get_next_available_stream_id()
c.conn.send_headers(sid, request_headers("/early-hints"), end_stream=True)
c.flush()
order, body = [], b""
for e in c.until(lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == sid):
    if getattr(e, "stream_id", None) != sid:
        continue
    if isinstance(e, h2.events.InformationalResponseReceived):
        order.append(("interim", dict(e.headers)))
    elif isinstance(e, h2.events.ResponseReceived):
        order.append(("final", dict(e.headers)))
    elif isinstance(e, h2.events.DataReceived):
        body += e.data
    elif isinstance(e, h2.events.StreamReset):
        fail("stream reset (%r)" % e.error_code)
if [kind for kind, _ in order] != ["interim", "final"]:
    fail("heads %r" % order)
interim, final = order[0][1], order[1][1]
if interim.get(":status") != "103" or interim.get("link") != "</style.css>; rel=preload; as=style":
    fail("interim head %r" % interim)
if final.get(":status") != "200" or body != b"final":
    fail("final head %r body %r" % (final, body))
ok("103 with its Link, then 200")
