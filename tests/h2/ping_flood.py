"""PING flood: frames that each demand an ACK, sent by a client that reads nothing (a small
receive buffer). pibl bounds the ACKs it queues: GOAWAY ENHANCE_YOUR_CALM, no growing output."""

from h2test import *
from flood import flood

flood(PING, b"12345678", "PING")
