"""SETTINGS exchanged both ways, PING acknowledged with its data, PRIORITY accepted and
ignored (RFC 9113 §6.3, §6.5, §6.7); a GET then works on the same connection."""

from h2test import *

c = Client()
events = c.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged))
if not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events):
    fail("pibl's SETTINGS did not come before its ACK of ours: %r" % events)
streams = c.conn.remote_settings.max_concurrent_streams
if streams != 128:
    fail("SETTINGS_MAX_CONCURRENT_STREAMS %r, not the default 128" % streams)
c.conn.ping(b"pibl-h2!")
c.flush()
c.until(lambda e: isinstance(e, h2.events.PingAckReceived) and e.ping_data == b"pibl-h2!")
# PRIORITY on an idle stream and on the stream about to open: both ignored (§5.3.2 deprecates
# the scheme, the frame stays valid).
c.conn.prioritize(9, weight=200, depends_on=0, exclusive=False)
c.conn.prioritize(1, weight=16, depends_on=9, exclusive=True)
c.flush()
status, headers, body, _ = c.get("/after-priority", stream_id=1)
if status != 200 or b"GET /after-priority" not in body:
    fail("GET after PRIORITY: %r %r" % (status, body))
if any(k in headers for k in ("connection", "keep-alive", "transfer-encoding")):
    fail("hop-by-hop field in an HTTP/2 response: %r" % headers)
ok("SETTINGS, PING ACK, PRIORITY ignored, then a GET (max streams %d)" % streams)
