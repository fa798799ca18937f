#!/usr/bin/env python3
"""Minimal SSTP (MS-SSTP) relay for interop tests of the ppp crate.

It speaks just enough SSTP over TLS to carry PPP frames between a real peer
and `ppp_stdio` (the crate's example binary), and logs every PPP frame in
both directions, so we can see what real peers send and accept.

  client mode: connect to an SSTP server (e.g. SoftEther), run ppp_stdio as
               the PPP peer;
      sstp_relay.py client HOST PORT -- ppp_stdio client USER PASS
  server mode: accept one SSTP client (e.g. sstpc+pppd), run ppp_stdio as
               the PPP authenticator; verifies the client's Crypto Binding
               (Compound MAC) with the HLAK the engine reports, which checks
               the HLAK derivation against the real client;
      sstp_relay.py server PORT CERT KEY -- ppp_stdio server USERS

Test tooling only: no retries, one session, exits when the link goes down.
"""
import hashlib, hmac, os, socket, ssl, struct, subprocess, sys, threading, time

LOG = lambda *a: print("sstp_relay:", *a, file=sys.stderr, flush=True)

CALL_CONNECT_REQUEST, CALL_CONNECT_ACK, CALL_CONNECT_NAK, CALL_CONNECTED = 1, 2, 3, 4
CALL_ABORT, CALL_DISCONNECT, CALL_DISCONNECT_ACK, ECHO_REQUEST, ECHO_RESPONSE = 5, 6, 7, 8, 9


def pkt(control, body):
    return struct.pack(">BBH", 0x10, 1 if control else 0, (4 + len(body)) & 0x0FFF) + body


def ctrl(msg_type, attrs):
    body = struct.pack(">HH", msg_type, len(attrs))
    for aid, val in attrs:
        body += struct.pack(">BBH", 0, aid, 4 + len(val)) + val
    return pkt(True, body)


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_sstp(s):
    h = read_exact(s, 4)
    ln = struct.unpack(">H", h[2:4])[0] & 0x0FFF
    return h[1] & 1, read_exact(s, ln - 4)


def parse_ctrl(body):
    t, n = struct.unpack(">HH", body[:4])
    attrs, off = [], 4
    for _ in range(n):
        aid, ln = body[off + 1], struct.unpack(">H", body[off + 2:off + 4])[0] & 0x0FFF
        attrs.append((aid, body[off + 4:off + ln]))
        off += ln
    return t, attrs


def compound_mac(hlak, msg):
    cmk = hmac.new(hlak, b"SSTP inner method derived CMK" + struct.pack("<H", 32) + b"\x01", hashlib.sha256).digest()
    return hmac.new(cmk, msg, hashlib.sha256).digest()


class Engine:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.hlak = None
        self.hlak_event = threading.Event()

    def send(self, frame):
        self.p.stdin.write(bytes([0]) + struct.pack(">H", len(frame)) + frame)
        self.p.stdin.flush()

    def pump_to(self, tls, lock):
        while True:
            h = self.p.stdout.read(3)
            if len(h) < 3:
                return
            d = self.p.stdout.read(struct.unpack(">H", h[1:3])[0])
            if h[0] == 1:
                self.hlak = d
                self.hlak_event.set()
                LOG("HLAK", d.hex())
                continue
            LOG("ppp ->", d.hex())
            with lock:
                tls.sendall(pkt(False, d))


def relay(tls, eng, on_ctrl):
    lock = threading.Lock()
    threading.Thread(target=eng.pump_to, args=(tls, lock), daemon=True).start()
    while True:
        try:
            c, body = read_sstp(tls)
        except (EOFError, OSError):
            LOG("TLS closed")
            return
        if not c:
            LOG("ppp <-", body.hex())
            eng.send(body)
            continue
        t, attrs = parse_ctrl(body)
        LOG("control", t, [(a, v.hex()) for a, v in attrs])
        if t == ECHO_REQUEST:
            with lock:
                tls.sendall(ctrl(ECHO_RESPONSE, []))
        elif t in (CALL_ABORT, CALL_DISCONNECT):
            if t == CALL_DISCONNECT:
                with lock:
                    tls.sendall(ctrl(CALL_DISCONNECT_ACK, []))
            return
        else:
            on_ctrl(t, attrs, body, lock)


def client(host, port, argv):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(socket.create_connection((host, port)), server_hostname=host)
    cert_hash = hashlib.sha256(tls.getpeercert(binary_form=True)).digest()
    tls.sendall(b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n"
                b"Host: " + host.encode() + b"\r\nContent-Length: 18446744073709551615\r\n"
                b"SSTPCORRELATIONID: {6A5A2D67-1A5C-4D1A-9A3B-2C6C1B5E1E11}\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(1)
    LOG("HTTP", head.split(b"\r\n")[0].decode())
    tls.sendall(ctrl(CALL_CONNECT_REQUEST, [(1, struct.pack(">H", 1))]))
    c, body = read_sstp(tls)
    t, attrs = parse_ctrl(body)
    assert t == CALL_CONNECT_ACK, t
    req = dict(attrs)[4]
    bitmask, nonce = req[3], req[4:36]
    LOG("Call Connect Ack, hash bitmask", bitmask)
    eng = Engine(argv)

    def send_connected():
        eng.hlak_event.wait()
        msg = bytearray(ctrl(CALL_CONNECTED, [(3, b"\0\0\0\x02" + nonce + cert_hash + b"\0" * 32)]))
        msg[-32:] = compound_mac(eng.hlak, bytes(msg))
        tls.sendall(bytes(msg))
        LOG("Call Connected sent")

    threading.Thread(target=send_connected, daemon=True).start()
    relay(tls, eng, lambda *a: None)
    eng.p.terminate()


def server(port, cert, key, argv):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    cert_hash = hashlib.sha256(der).digest()
    ls = socket.create_server(("0.0.0.0", port))
    raw, addr = ls.accept()
    tls = ctx.wrap_socket(raw, server_side=True)
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(1)
    LOG("HTTP", head.split(b"\r\n")[0].decode())
    tls.sendall(b"HTTP/1.1 200\r\nContent-Length: 18446744073709551615\r\nServer: Microsoft-HTTPAPI/2.0\r\n\r\n")
    c, body = read_sstp(tls)
    t, attrs = parse_ctrl(body)
    assert t == CALL_CONNECT_REQUEST, t
    nonce = os.urandom(32)
    tls.sendall(ctrl(CALL_CONNECT_ACK, [(4, b"\0\0\0\x03" + nonce)]))
    eng = Engine(argv)

    def on_ctrl(t, attrs, body, lock):
        if t != CALL_CONNECTED:
            return
        cb = dict(attrs)[3]
        proto, got_nonce, got_hash, got_mac = cb[3], cb[4:36], cb[36:68], cb[68:100]
        eng.hlak_event.wait(30)
        LOG("Call Connected: hash protocol", proto, "nonce ok", got_nonce == nonce, "cert hash ok", got_hash[:32] == cert_hash)
        if proto == 2 and eng.hlak is not None:
            zeroed = body[:-32] + b"\0" * 32
            want = compound_mac(eng.hlak, pkt(True, zeroed))
            LOG("CRYPTO BINDING", "VERIFIED" if want == got_mac else "MISMATCH")

    relay(tls, eng, on_ctrl)
    eng.p.terminate()


if __name__ == "__main__":
    a = sys.argv[1:]
    sep = a.index("--")
    mode, rest, argv = a[0], a[1:sep], a[sep + 1:]
    if mode == "client":
        client(rest[0], int(rest[1]), argv)
    else:
        server(int(rest[0]), rest[1], rest[2], argv)
