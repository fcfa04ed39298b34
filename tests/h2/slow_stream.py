"""A slow stream does not hold up the others on its connection, and flow control is its
backpressure: stream 1 POSTs 16 MiB to a backend that reads nothing yet, so only what the
windows and the upstream socket's buffers take leaves the client; stream 3's GET on the same
connection is answered meanwhile. The script prints "fast done" then, waits for a line on stdin
(the test releases the backend), and checks that the rest of the body goes and stream 1's
response comes whole."""

from h2test import *

BODY = 16 << 20
c = Client()
slow = c.conn.get_next_available_stream_id()
c.conn.send_headers(
    slow, request_headers("/slow", "POST", [("content-length", str(BODY))]), end_stream=False)
sent = 0


def pump():
    """Sends what the windows allow of the body."""
    global sent
    while sent < BODY:
        n = min(c.conn.local_flow_control_window(slow), c.conn.max_outbound_frame_size, BODY - sent)
        if n <= 0:
            break
        c.conn.send_data(slow, b"x" * n, end_stream=sent + n == BODY)
        sent += n
    c.flush()


def events(timeout):
    """The events of one read, none when nothing came in `timeout` seconds."""
    try:
        return c.read(timeout)
    except TimeoutError:
        return []


pump()
fast = c.conn.get_next_available_stream_id()
c.conn.send_headers(fast, request_headers("/fast"), end_stream=True)
c.flush()
# The fast stream's response, the slow body sent meanwhile as fast as pibl opens its window.
status, body, fast_done = None, b"", False
deadline = time.time() + 10
while not fast_done and time.time() < deadline and not c.closed:
    pump()
    for e in events(1):
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == fast:
            status = int(dict(e.headers)[":status"])
        elif isinstance(e, h2.events.DataReceived) and e.stream_id == fast:
            body += e.data
            c.conn.acknowledge_received_data(e.flow_controlled_length, fast)
        elif isinstance(e, h2.events.StreamEnded) and e.stream_id == fast:
            fast_done = True
        elif isinstance(e, h2.events.StreamEnded) and e.stream_id == slow:
            fail("the slow stream ended before the backend read its body")
        elif isinstance(e, h2.events.StreamReset):
            fail("stream %d reset (%r)" % (e.stream_id, e.error_code))
if status != 200 or body != b"fast":
    fail("fast stream: status %r body %r" % (status, body))
# A little more for the window pibl opens as the upstream socket's buffers fill, then none.
end = time.time() + 1
while time.time() < end:
    pump()
    events(0.2)
if sent >= BODY:
    fail("the whole 16 MiB left the client before the backend read any of it")
print("fast done with %d of %d body bytes sent" % (sent, BODY), flush=True)
sys.stdin.readline()

status, answer = None, b""
deadline = time.time() + 30
while time.time() < deadline:
    pump()
    for e in events(1):
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == slow:
            status = int(dict(e.headers)[":status"])
        elif isinstance(e, h2.events.DataReceived) and e.stream_id == slow:
            answer += e.data
            c.conn.acknowledge_received_data(e.flow_controlled_length, slow)
            c.flush()
        elif isinstance(e, h2.events.StreamReset):
            fail("stream %d reset (%r)" % (e.stream_id, e.error_code))
        elif isinstance(e, h2.events.StreamEnded) and e.stream_id == slow:
            if status != 200 or answer != b"got %d" % BODY:
                fail("slow stream: status %r body %r" % (status, answer))
            ok("the slow stream's %d bytes arrived after the fast stream was answered" % BODY)
    if c.closed:
        fail("connection closed")
fail("no whole response on the slow stream (%d body bytes sent)" % sent)
