"""Invalid frames get the error RFC 9113 §4-6 names, each on a fresh connection: a connection
error is GOAWAY with its code, then close; a stream error is RST_STREAM on that stream, and the
connection goes on (a GET after it is served)."""

from h2test import *

FRAME_SIZE_ERROR, STREAM_CLOSED = 6, 5
ENABLE_PUSH, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 2, 4, 5


def get(r, sid, path):
    r.headers(sid, request_headers(path))
    f = r.until(lambda f: f[2] == sid and (f[0] == RST_STREAM or (
        f[0] in (HEADERS, DATA) and f[1] & END_STREAM)))
    if f[0] == RST_STREAM:
        fail("%s: reset %d" % (path, struct.unpack(">I", f[3][:4])[0]))


counts = {"connection": 0, "stream": 0}


def connection_error(what, code, frames, open_stream=False):
    counts["connection"] += 1
    r = Raw()
    if open_stream:
        r.headers(1, request_headers("/open", "POST"), end_stream=False)
    r.write(b"".join(frames))
    last, got, debug = r.goaway()
    if got != code:
        fail("%s: GOAWAY %d (%r), not %d" % (what, got, debug, code))
    if not r.closed_after(5):
        fail("%s: still open after GOAWAY" % what)
    print("%s: GOAWAY %d (%s)" % (what, got, debug.decode("utf-8", "replace")))


def stream_error(what, code, make):
    counts["stream"] += 1
    r = Raw()
    r.headers(1, request_headers("/open", "POST"), end_stream=False)
    r.write(make(r))
    f = r.until(lambda f: f[0] in (RST_STREAM, GOAWAY))
    if f[0] == GOAWAY:
        fail("%s: GOAWAY %r instead of a stream error" % (what, f[3][:8]))
    got = struct.unpack(">I", f[3][:4])[0]
    if f[2] != 1 or got != code:
        fail("%s: RST_STREAM %d on stream %d, not %d on 1" % (what, got, f[2], code))
    get(r, 3, "/after")
    print("%s: RST_STREAM %d, then a GET served" % (what, got))


F = Raw.frame
connection_error("DATA on stream 0", PROTOCOL_ERROR, [F(DATA, 0, 0, b"x")])
connection_error("HEADERS on stream 0", PROTOCOL_ERROR, [F(HEADERS, END_HEADERS, 0, b"\x82")])
connection_error("an even stream id", PROTOCOL_ERROR, [F(HEADERS, END_HEADERS, 2, b"\x82")])
connection_error("SETTINGS of 5 bytes", FRAME_SIZE_ERROR, [F(SETTINGS, 0, 0, b"\0" * 5)])
connection_error("SETTINGS ACK with a payload", FRAME_SIZE_ERROR, [F(SETTINGS, ACK, 0, b"\0" * 6)])
connection_error("SETTINGS on a stream", PROTOCOL_ERROR, [F(SETTINGS, 0, 1, b"")])
connection_error("ENABLE_PUSH 2", PROTOCOL_ERROR,
                 [F(SETTINGS, 0, 0, struct.pack(">HI", ENABLE_PUSH, 2))])
connection_error("INITIAL_WINDOW_SIZE 2^31", FLOW_CONTROL_ERROR,
                 [F(SETTINGS, 0, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, 1 << 31))])
connection_error("MAX_FRAME_SIZE 100", PROTOCOL_ERROR,
                 [F(SETTINGS, 0, 0, struct.pack(">HI", MAX_FRAME_SIZE, 100))])
connection_error("PING of 7 bytes", FRAME_SIZE_ERROR, [F(PING, 0, 0, b"\0" * 7)])
connection_error("PING on a stream", PROTOCOL_ERROR, [F(PING, 0, 1, b"\0" * 8)])
connection_error("a frame over MAX_FRAME_SIZE", FRAME_SIZE_ERROR, [F(DATA, 0, 1, b"\0" * 16385)],
                 open_stream=True)
connection_error("PUSH_PROMISE from a client", PROTOCOL_ERROR,
                 [F(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82")], open_stream=True)
connection_error("CONTINUATION without HEADERS", PROTOCOL_ERROR, [F(CONTINUATION, END_HEADERS, 1, b"\x82")])
connection_error("WINDOW_UPDATE 0 on the connection", PROTOCOL_ERROR,
                 [F(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0))])
connection_error("WINDOW_UPDATE past 2^31-1 on the connection", FLOW_CONTROL_ERROR,
                 [F(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF))])
connection_error("RST_STREAM on an idle stream", PROTOCOL_ERROR,
                 [F(RST_STREAM, 0, 9, struct.pack(">I", CANCEL))])
connection_error("GOAWAY on a stream", PROTOCOL_ERROR, [F(GOAWAY, 0, 1, b"\0" * 8)])
connection_error("RST_STREAM of 3 bytes", FRAME_SIZE_ERROR, [F(RST_STREAM, 0, 1, b"\0\0\0")],
                 open_stream=True)
connection_error("WINDOW_UPDATE of 3 bytes", FRAME_SIZE_ERROR, [F(WINDOW_UPDATE, 0, 0, b"\0\0\1")])
connection_error("an HPACK index past the table", COMPRESSION_ERROR,
                 [F(HEADERS, END_HEADERS | END_STREAM, 3, b"\xff\x7f")])

stream_error("WINDOW_UPDATE 0 on a stream", PROTOCOL_ERROR,
             lambda r: F(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)))
stream_error("WINDOW_UPDATE past 2^31-1 on a stream", FLOW_CONTROL_ERROR,
             lambda r: F(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)))
stream_error("PRIORITY depending on itself", PROTOCOL_ERROR,
             lambda r: F(PRIORITY, 0, 1, struct.pack(">IB", 1, 16)))
stream_error("PRIORITY of 4 bytes", FRAME_SIZE_ERROR,
             lambda r: F(PRIORITY, 0, 1, b"\0\0\0\0"))
ok("%d connection errors and %d stream errors as RFC 9113 names them" % (counts["connection"], counts["stream"]))
