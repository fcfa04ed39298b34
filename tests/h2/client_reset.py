"""A client's RST_STREAM mid-response: the client asks for a response whose body the backend
sends slowly, gets the head, resets the stream and keeps the connection open. pibl must close
the stream's upstream connection (never pool it mid-response: tests/http2.rs watches the
backend) and go on serving the connection: a second request on it gets its response."""

from h2test import *

path = sys.argv[4] if len(sys.argv) > 4 else "/slow?body_ms=3000&n=1000"
r = Raw()
r.headers(1, request_headers(path))
r.until(lambda f: f[0] == HEADERS and f[2] == 1, 10)
r.send(RST_STREAM, 0, 1, struct.pack(">I", CANCEL))
print("reset stream 1 after its head", flush=True)
time.sleep(1.5)
r.headers(3, request_headers("/after-reset"))
f = r.until(lambda f: f[0] == DATA and f[2] == 3 and f[1] & END_STREAM, 10)
ok("stream 3 served after the reset of stream 1")
