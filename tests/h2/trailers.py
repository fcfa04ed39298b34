"""Trailers both ways: the request's reach the backend (in the chunked trailer section, checked
by the Rust side), the backend's come back as a HEADERS frame ending the stream."""

from h2test import *

c = Client()
status, headers, body, trailers = c.get(
    "/trailers", body=b"with trailers", trailers=[("x-request-trailer", "sent")])
if status != 200 or body != b"response body":
    fail("status %r body %r" % (status, body))
if not trailers or trailers.get("x-response-trailer") != "back":
    fail("response trailers %r (headers %r)" % (trailers, headers))
ok("trailers both ways: %r" % trailers)
