"""A client's RST_STREAM before any response: the client asks for a response the backend never
starts (`/slow-head`), resets the stream half a second later and keeps the connection open.
pibl logs that request as nginx does (499: the client went before any of the response) and
goes on serving the connection: a second request on it gets its response."""

from h2test import *

r = Raw()
r.headers(1, request_headers("/slow-head"))
time.sleep(0.5)
r.send(RST_STREAM, 0, 1, struct.pack(">I", CANCEL))
print("reset stream 1 before its head", flush=True)
r.headers(3, request_headers("/after-early-reset"))
r.until(lambda f: f[0] == DATA and f[2] == 3 and f[1] & END_STREAM, 10)
ok("stream 3 served after the early reset of stream 1")
