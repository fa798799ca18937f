#!/usr/bin/env python3
"""Writes the committed seed corpus of the sstp fuzz targets.

stream_decoder and message_roundtrip get the MS-SSTP §4.7 messages (the
Call Connected from the field listings: the spec's raw dump has two typos)
and the other message types; engine_events gets byte-code scripts (see
fuzz_targets/engine_events.rs) for the happy path, early Call Connected,
NAKs, timeouts, keepalive and teardown.

Usage: crates/sstp/fuzz/make-seeds.py   (rewrites corpus/*/seed-*)
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def h(s):
    return bytes.fromhex(s.replace("-", " "))


NONCE256 = h("41 2B 48 9A EB D7 EC C7 D0 89 66 F2 6B E7 CD 72 B2 31 A0 E9 21 0D 7C 91 B3 08 86 2B 03 44 C4 35")
CERT256 = h("79 93 EF 31 4C 49 3D AC E9 F0 2D 60 E7 E6 1C 84 B6 69 0A AF E9 D7 AE EA 92 CB BE 8A D5 99 42 2D")
MAC256 = h("52 A6 8E FD 8C FF BF 52 77 0B 8F 0F E8 EC 73 71 65 83 AF 6D 61 1E B6 D1 79 B3 B2 08 40 98 54 49")
NONCE1 = h("0F 1A 2D 58 D4 A3 E3 00 0F AD 3C E4 90 6E 07 B7 07 AA 9E 44 1C CE AC 5C BD 7B 2C C1 C9 D8 6C DF")

CONNECT_REQUEST = h("10 01 00 0E 00 01 00 01 00 01 00 06 00 01")
ACK_SHA256 = h("10 01 00 30 00 02 00 01 00 04 00 28 00 00 00 02") + NONCE256
ACK_SHA1 = h("10 01 00 30 00 02 00 01 00 04 00 28 00 00 00 01") + NONCE1
CALL_CONNECTED = h("10 01 00 70 00 04 00 01 00 03 00 68 00 00 00 02") + NONCE256 + CERT256 + MAC256
NAK = h("10 01 00 14 00 03 00 01 00 02 00 0C 00 00 00 01 00 00 00 04")  # EPID, VALUE_NOT_SUPPORTED
ABORT = h("10 01 00 14 00 05 00 01 00 02 00 0C 00 00 00 00 00 00 00 05")  # UNACCEPTED_FRAME_RECEIVED
DISCONNECT = h("10 01 00 14 00 06 00 01 00 02 00 0C 00 00 00 00 00 00 00 00")
DISCONNECT_ACK = h("10 01 00 08 00 07 00 00")
ECHO_REQUEST = h("10 01 00 08 00 08 00 00")
ECHO_RESPONSE = h("10 01 00 08 00 09 00 00")
LCP = h("10 00 00 0C FF 03 C0 21 01 01 00 04")  # data packet: LCP Configure-Request
IP = h("10 00 00 1C FF 03 00 21 45 00 00 14 00 00 00 00 40 01 00 00 0A 00 00 01 0A 00 00 02")


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- message_roundtrip: one packet each -----------------------------------
for name, m in [
    ("connect-request", CONNECT_REQUEST),
    ("ack-sha256", ACK_SHA256),
    ("ack-sha1", ACK_SHA1),
    ("call-connected", CALL_CONNECTED),
    ("nak", NAK),
    ("abort", ABORT),
    ("disconnect", DISCONNECT),
    ("echo-request", ECHO_REQUEST),
    ("data-lcp", LCP),
]:
    write("message_roundtrip", name, m)

# --- stream_decoder: chunk-seed byte + stream -----------------------------
session = CONNECT_REQUEST + ACK_SHA256 + LCP + LCP + CALL_CONNECTED + IP + ECHO_REQUEST + ECHO_RESPONSE
write("stream_decoder", "session-whole", b"\x00" + session)
write("stream_decoder", "session-bytes", b"\x01" + session)
write("stream_decoder", "teardown-chunks", b"\x2a" + DISCONNECT + DISCONNECT_ACK + ABORT + NAK + ACK_SHA1)
write("stream_decoder", "http-garbage", b"\x05" + CONNECT_REQUEST + b"GET / HTTP/1.1\r\n\r\n")

# --- engine_events: byte-code scripts --------------------------------------
# op byte: client op k -> k, server op k -> 130 + k (k = byte % 13,
# side = bit 7). For network ops the side is the receiving one.
START, DELIVER, DELIVER_SOME, DROP, CORRUPT, INJECT, ADVANCE, TIMEOUT, AUTH, SEND, DISC, LOWER, RAW = range(13)


def c(op, *args):
    return bytes([op, *args])


def s(op, *args):
    return bytes([130 + op, *args])


CFG = bytes(8)  # default timers, both hash protocols, no bypass
handshake = c(START) + s(DELIVER, 0) + c(DELIVER, 0)
ppp_control = c(SEND, 1, 0, 8) + s(DELIVER, 0) + s(SEND, 1, 0, 8) + c(DELIVER, 0)
auth = s(AUTH, 0) + c(AUTH, 0) + s(DELIVER, 0)
data = c(SEND, 0, 0, 64) + s(DELIVER, 0) + s(SEND, 0, 0x0f, 0xfb) + c(DELIVER, 3)
keepalive = c(ADVANCE, 240) + s(DELIVER, 0) + c(DELIVER, 0) + c(ADVANCE, 240) + s(DELIVER, 0) + c(DELIVER, 0)
write("engine_events", "happy", CFG + handshake + ppp_control + auth + data + keepalive
      + c(DISC) + s(DELIVER, 0) + c(DELIVER, 0) + c(ADVANCE, 8))
write("engine_events", "early-call-connected", CFG + handshake + c(AUTH, 0) + c(SEND, 0, 0, 64)
      + s(DELIVER_SOME, 0, 20, 7) + s(DELIVER, 0) + c(ADVANCE, 12) + s(AUTH, 0) + s(DELIVER, 0)
      + c(SEND, 0, 0, 64) + s(DELIVER, 0))
write("engine_events", "bad-mac", CFG + handshake + s(AUTH, 9) + c(AUTH, 0) + s(DELIVER, 0)
      + c(DELIVER, 0) + s(DELIVER, 0) + c(ADVANCE, 20))
write("engine_events", "simultaneous-disconnect", CFG + handshake + auth + c(DISC) + s(DISC)
      + s(DELIVER, 1) + c(DELIVER, 1) + s(DELIVER, 0) + c(DELIVER, 0) + c(ADVANCE, 8))
write("engine_events", "negotiation-timeouts", bytes([20, 0, 0, 0, 0, 0, 0, 0]) + c(START)
      + c(ADVANCE, 200) + s(DELIVER, 0) + c(DELIVER, 0) + c(ADVANCE, 200))
write("engine_events", "dead-peer", CFG + handshake + auth + c(ADVANCE, 240) + c(ADVANCE, 240)
      + s(DELIVER, 0) + c(ADVANCE, 240))
# Lone server: injected Call Connect Request, NAK paths, then a good request
# and a correctly bound Call Connected.
write("engine_events", "lone-server", CFG
      + s(INJECT, 10, 1, 3, 9, 1, 4, 1, 2, 3, 4) + s(DELIVER, 0)       # unrecognized attributes
      + s(INJECT, 9, 1, 2, 0, 0, 2, 1, 2, 11, 3, 5, 6, 7) + s(DELIVER, 0)  # EPID 2, Status Info
      + s(INJECT, 0) + s(DELIVER, 0) + s(AUTH, 0)
      + s(INJECT, 3, 0) + s(DELIVER, 0) + s(INJECT, 7) + s(DELIVER, 0)
      + s(INJECT, 11, 0, 0, 40) + s(DELIVER, 0) + s(ADVANCE, 255) + s(ADVANCE, 255))
# Lone client: NAK, then an Ack, then wrong-state messages.
write("engine_events", "lone-client", CFG + c(START)
      + c(INJECT, 2, 1, 0, 0, 2) + c(DELIVER, 0) + c(INJECT, 1, 3) + c(DELIVER, 0) + c(AUTH, 0)
      + c(INJECT, 8) + c(DELIVER, 0) + c(INJECT, 6) + c(DELIVER, 0) + c(ADVANCE, 20))
write("engine_events", "corrupted", CFG + handshake + s(AUTH, 0) + c(AUTH, 0)
      + s(CORRUPT, 0, 20, 0x55) + s(DELIVER, 0) + c(DELIVER, 0) + c(ADVANCE, 20))
