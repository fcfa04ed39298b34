"""A response with trailers, asked twice over HTTP/2 from a pibl with the cache and compression
on: each time the body as the backend sent it (not compressed) and its trailers as a HEADERS
frame ending the stream (the response is not stored: the test counts the backend's requests)."""

from h2test import *

c = Client()
for n in range(2):
    status, headers, body, trailers = c.get("/trailers", extra=[("accept-encoding", "gzip")])
    if status != 200 or body != b"hello trailers":
        fail("request %d: status %r body %r" % (n, status, body))
    if "content-encoding" in headers:
        fail("request %d: compressed: %r" % (n, headers))
    if not trailers or trailers.get("x-checksum") != "42":
        fail("request %d: trailers %r (headers %r)" % (n, trailers, headers))
ok("trailers both times, never compressed")
