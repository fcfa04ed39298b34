"""What the HTTP/2 conformance and attack scripts share (tests/http2_conformance.rs runs them).

Each script is run as `python3 SCRIPT HOST PORT [CA_FILE]`: with a CA file it speaks TLS with
ALPN h2, else h2c with prior knowledge. It exits 0 when pibl behaved as the RFC (or the defence)
says, else prints why and exits 1.

Two ways to talk: `Client` wraps Python's `h2` library (it checks every frame pibl sends), and
`Raw` writes frames byte by byte (hpack for the header blocks) for what the library refuses to
send: a lower stream id, endless CONTINUATION, an HPACK bomb, floods.
"""

import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack

# Frame types and error codes (RFC 9113 §6, §7).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 7, 8, 9, 11
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def ok(what):
    print("ok: " + what)
    sys.exit(0)


def args():
    host, port = sys.argv[1], int(sys.argv[2])
    ca = sys.argv[3] if len(sys.argv) > 3 else None
    return host, port, ca


def connect(rcvbuf=None):
    """A socket to pibl: TLS with ALPN h2 when a CA file is given, else plain."""
    host, port, ca = args()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, port))
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname="localhost")
        if s.selected_alpn_protocol() != "h2":
            fail("ALPN agreed %r, not h2" % s.selected_alpn_protocol())
    return s


def authority():
    host, port, _ = args()
    return "%s:%d" % (host, port)


def request_headers(path, method="GET", extra=()):
    _, _, ca = args()
    return [
        (":method", method),
        (":scheme", "https" if ca else "http"),
        (":path", path),
        (":authority", authority()),
    ] + list(extra)


class Client:
    """Python's h2 library over a socket: it validates what pibl sends."""

    def __init__(self, sock=None, settings=None):
        self.sock = sock or connect()
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding="utf-8",
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read(self, timeout=10):
        """The events of one read (an empty list at EOF, then `closed`)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def until(self, want, timeout=10):
        """Reads until `want(event)` is true; every event read, the wanted one last."""
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline and not self.closed:
            for e in self.read(max(0.1, deadline - time.time())):
                seen.append(e)
                if want(e):
                    return seen
        fail("waited for an event; saw %r" % seen)

    def get(self, path, stream_id=None, extra=(), body=None, trailers=None):
        """A request on a new stream; its response as (status, headers, body, trailers)."""
        sid = stream_id or self.conn.get_next_available_stream_id()
        method = "POST" if body is not None else "GET"
        end = body is None and trailers is None
        self.conn.send_headers(sid, request_headers(path, method, extra), end_stream=end)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=trailers is None)
        if trailers is not None:
            self.conn.send_headers(sid, trailers, end_stream=True)
        self.flush()
        return self.response(sid)

    def response(self, sid, timeout=10):
        status, headers, body, trailers = None, None, b"", None
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.closed:
                fail("connection closed before the response on stream %d" % sid)
            for e in self.read(max(0.1, deadline - time.time())):
                if getattr(e, "stream_id", None) != sid:
                    continue
                if isinstance(e, h2.events.ResponseReceived):
                    headers = dict(e.headers)
                    status = int(headers[":status"])
                elif isinstance(e, h2.events.DataReceived):
                    body += e.data
                    self.conn.acknowledge_received_data(e.flow_controlled_length, sid)
                    self.flush()
                elif isinstance(e, h2.events.TrailersReceived):
                    trailers = dict(e.headers)
                elif isinstance(e, h2.events.StreamReset):
                    fail("stream %d reset (%r)" % (sid, e.error_code))
                if isinstance(e, h2.events.StreamEnded):
                    return status, headers, body, trailers
        fail("no whole response on stream %d" % sid)


class Raw:
    """Frames written by hand, and pibl's frames read back without judging them."""

    def __init__(self, settings=(), rcvbuf=None, read_settings=True):
        self.sock = connect(rcvbuf)
        self.buf = b""
        self.server_settings = {}
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.sock.sendall(PREFACE + self.frame(SETTINGS, 0, 0, b"".join(
            struct.pack(">HI", k, v) for k, v in settings)))
        if read_settings:
            # pibl's SETTINGS, then its ACK of ours; ours ACKs its.
            self.until(lambda f: f[0] == SETTINGS and f[1] & ACK)
            self.send(SETTINGS, ACK, 0, b"")

    @staticmethod
    def frame(kind, flags, stream_id, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
            ">I", stream_id) + payload

    def send(self, kind, flags, stream_id, payload):
        self.sock.sendall(self.frame(kind, flags, stream_id, payload))

    def block(self, headers):
        return self.encoder.encode(headers)

    def headers(self, stream_id, headers, end_stream=True):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(HEADERS, flags, stream_id, self.block(headers))

    def read_frame(self, timeout=10):
        """(type, flags, stream, payload); None at EOF (or reset), False at the timeout."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                length = struct.unpack(">I", b"\0" + self.buf[:3])[0]
                if len(self.buf) >= 9 + length:
                    kind, flags = self.buf[3], self.buf[4]
                    sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    return kind, flags, sid, payload
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return None
            if not data:
                return None
            self.buf += data

    def poll(self):
        """The frames already readable, without waiting; None among them at EOF."""
        frames = []
        while True:
            f = self.read_frame(0.001)
            if f is False:
                return frames
            frames.append(f)
            if f is None:
                return frames

    def note(self, f):
        """Keeps what later checks need from a frame of pibl's."""
        if f[0] == SETTINGS and not f[1] & ACK:
            for i in range(0, len(f[3]) - 5, 6):
                k, v = struct.unpack(">HI", f[3][i:i + 6])
                self.server_settings[k] = v
        if f[0] == HEADERS:
            try:
                self.decoder.decode(f[3])
            except Exception:  # a block in CONTINUATION: not needed here
                pass

    def until(self, want, timeout=10):
        """Frames until `want(frame)`; that frame, or fail at EOF or the deadline."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            f = self.read_frame(max(0.1, deadline - time.time()))
            if f is False:
                continue
            if f is None:
                fail("connection ended while waiting; buffered %d bytes" % len(self.buf))
            self.note(f)
            if want(f):
                return f
        fail("nothing wanted arrived in %ss" % timeout)

    def goaway(self, timeout=10):
        """The GOAWAY pibl sends: (last stream id, error code, debug data); or fail."""
        f = self.until(lambda f: f[0] == GOAWAY, timeout)
        last, code = struct.unpack(">II", f[3][:8])
        return last & 0x7FFFFFFF, code, f[3][8:]

    def closed_after(self, timeout=10):
        """Reads and drops frames until EOF; True if it came within `timeout`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            f = self.read_frame(max(0.1, deadline - time.time()))
            if f is None:
                return True
            if f:
                self.note(f)
        return False

    def write(self, data):
        """Sends `data`; False if pibl closed the connection (or stopped reading for 10 s)."""
        try:
            self.sock.sendall(data)
            return True
        except (socket.timeout, ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return False
