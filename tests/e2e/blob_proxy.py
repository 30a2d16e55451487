#!/usr/bin/env python3
"""blob_proxy.py — a fault-injecting HTTP proxy in front of Azurite, for tests.

    blob_proxy.py --upstream http(s)://127.0.0.1:PORT [--cafile CA]
                  [--port-file FILE] [--exit-with PID]

Listens on 127.0.0.1 (a free port; printed on stdout and written to FILE) and
forwards every request to UPSTREAM as it came: the request line, the headers
(Host included) and the body, byte for byte.  SharedKey signs the path, the
query and the x-ms-* headers, not the host, so a client signs for the proxy's
URL and Azurite accepts it.  The one change: a request that carries
`Expect: 100-continue` is answered `100 Continue` by the proxy itself and goes
upstream without that header (it is not signed).  Each request goes upstream
on a connection of its own, which is then closed; the client's connection is
kept alive (HTTP/1.1, Content-Length or chunked bodies, streamed) for up to
300 s idle, not Azurite's 5: a test of a stale keep-alive connection goes to
Azurite directly.

Control API (the proxy's own paths, never forwarded; an account name cannot
start with '_'):
  POST /_proxy/rules   a rule (JSON object) or a list of them; answers {"ids": [...]}
  GET  /_proxy/rules   the rules, each with how often it fired
  GET  /_proxy/stats   {"METHOD COMP": {"requests", "bytes", "resp_bytes",
                        "injected"}}, COMP the comp= of the query or "-":
                        "PUT block", "PUT blocklist", "PUT -" (Put Blob),
                        "GET -", "HEAD -", "PUT metadata", "GET list"...
                        bytes: request body bytes the client sent
  GET  /_proxy/log     one JSON line per request: method, target (a SAS
                        signature redacted), status, bytes, resp_bytes,
                        if_match, if_none_match, range, action
  POST /_proxy/clear   drops the rules, zeroes the counters and the log

A rule: {"action": A, "method": "PUT", "match": REGEX, "times": 1, "skip": 0, ...}
  method  the request's method (any when absent)
  match   a regular expression searched in the request target (path?query as
          sent, still URL-encoded); any when absent
  skip    let this many matching requests pass first
  times   fire this many times (default 1; 0: every time)
The first rule that fires for a request decides.  Actions:
  error      answer STATUS (default 503) without forwarding: an Azure error
             XML body and x-ms-error-code CODE (default by status: 503
             ServerBusy, 500 OperationTimedOut, 408 RequestTimeout, ...);
             "message", "retry_after" (seconds, a Retry-After header), and
             "close": true to close the connection after it
  delay      wait "seconds" (default 5), then forward
  reset      read the request, then reset the connection: nothing forwarded
  reset-after  forward it (the write happens), then reset the connection
             instead of answering: the client never learns the outcome
  cut        forward it, relay the response head and the first "bytes"
             (default 0) body bytes, then reset the connection (an answer
             with a Content-Length, as Get Blob's; a chunked one is relayed
             whole before the reset)
  overwrite  first write the target blob (the request's path) through
             UPSTREAM as another writer would: a Put Blob with "data" (default
             "another writer\\n") signed with the connection string's key
             (AZURE_STORAGE_CONNECTION_STRING in the proxy's environment),
             then forward the request; an If-Match on the old ETag then gets
             412 ConditionNotMet.  Use it on the first Put Block List (or Put
             Block, Set Blob Metadata) of a blob.
Exits when process PID (--exit-with) is gone.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

ERROR_CODES = {503: "ServerBusy", 500: "OperationTimedOut", 408: "RequestTimeout",
               412: "ConditionNotMet", 404: "BlobNotFound", 409: "BlobAlreadyExists",
               403: "AuthenticationFailed", 429: "TooManyRequests"}
ERROR_MESSAGES = {"ServerBusy": "The server is busy.",
                  "OperationTimedOut": "Operation could not be completed within the specified time."}
REASONS = {200: "OK", 201: "Created", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
           409: "Conflict", 412: "Precondition Failed", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}
API_VERSION = "2025-01-05"


class State:
    """Rules, counters and the request log, shared by every connection."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1
        self.stats = {}
        self.log = []

    def add(self, rule):
        if not isinstance(rule, dict) or rule.get("action") not in (
                "error", "delay", "reset", "reset-after", "cut", "overwrite"):
            raise ValueError("a rule is an object with an action")
        re.compile(rule.get("match", ""))
        with self.lock:
            rule = dict(rule, id=self.next_id, fired=0, seen=0)
            self.next_id += 1
            self.rules.append(rule)
            return rule["id"]

    def take(self, method, target):
        """The rule that fires for this request, or None."""
        with self.lock:
            for r in self.rules:
                if r.get("method", method) != method or not re.search(r.get("match", ""), target):
                    continue
                times = r.get("times", 1)
                if times and r["fired"] >= times:
                    continue
                r["seen"] += 1
                if r["seen"] <= r.get("skip", 0):
                    continue
                r["fired"] += 1
                return dict(r)
        return None

    def count(self, key, field, n):
        with self.lock:
            entry = self.stats.setdefault(key, {"requests": 0, "bytes": 0, "resp_bytes": 0, "injected": 0})
            entry[field] += n

    def record(self, entry):
        with self.lock:
            self.log.append(entry)


class Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def head(self):
        """Bytes up to and including the blank line; None on a clean EOF."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ValueError("header too long")
            try:
                self.fill()
            except EOFError:
                if self.buf:
                    raise
                return None
        i = self.buf.index(b"\r\n\r\n") + 4
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def some(self, limit):
        if not self.buf:
            try:
                self.fill()
            except EOFError:
                return b""
        out, self.buf = self.buf[:limit], self.buf[limit:]
        return out


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def header(headers, name, default=None):
    for n, v in headers:
        if n == name:
            return v
    return default


def relay_body(src, dst, headers, none=False, limit=None, until_eof=False):
    """Copies one message body from src (a Reader) to dst (a socket, or None
    to drop it), framed as headers say (with neither length nor chunks: no
    body, or up to EOF with until_eof, as a response may be); returns the
    payload byte count.  With limit, stops after that many payload bytes (the
    caller then resets)."""
    sent = 0

    def put(data):
        if dst is not None:
            dst.sendall(data)

    if none:
        return 0
    if "chunked" in header(headers, "transfer-encoding", "").lower():
        while True:
            size_line = src.line()
            size = int(size_line.split(b";")[0].strip(), 16)
            put(size_line)
            if size == 0:
                while True:               # trailers, then the blank line
                    trailer = src.line()
                    put(trailer)
                    if trailer == b"\r\n":
                        return sent
            left = size + 2
            while left:
                data = src.some(min(left, 65536))
                if not data:
                    raise EOFError
                put(data)
                left -= len(data)
            sent += size
    length = header(headers, "content-length")
    left = int(length) if length is not None else (None if until_eof else 0)
    while left is None or left > 0:
        want = 65536 if left is None else min(left, 65536)
        if limit is not None:
            want = min(want, limit - sent)
            if want <= 0:
                return sent
        data = src.some(want)
        if not data:
            if left is None:
                return sent
            raise EOFError
        put(data)
        sent += len(data)
        if left is not None:
            left -= len(data)
    return sent


def reset(sock):
    """Closes with a TCP reset, not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


class Proxy:
    def __init__(self, upstream, cafile):
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = None
        if parts.scheme == "https":
            self.tls = ssl.create_default_context(cafile=cafile)
        self.state = State()

    def connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=300)
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        return sock

    # ---- another writer -------------------------------------------------
    def overwrite(self, path, data):
        """Put Blob on path through the upstream, signed with SharedKey."""
        fields = dict(p.split("=", 1) for p in os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "").split(";")
                      if "=" in p)
        account, key = fields.get("AccountName"), fields.get("AccountKey")
        if not account or not key:
            return "no AccountName/AccountKey in AZURE_STORAGE_CONNECTION_STRING"
        date = formatdate(usegmt=True)
        xms = {"x-ms-blob-type": "BlockBlob", "x-ms-date": date, "x-ms-version": API_VERSION}
        ctype = "application/octet-stream"
        sts = "\n".join(["PUT", "", "", str(len(data)) if data else "", "", ctype, "", "", "", "", "", ""])
        sts += "\n" + "".join("%s:%s\n" % (k, xms[k]) for k in sorted(xms)) + "/%s%s" % (account, path)
        sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
        head = "PUT %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\nContent-Type: %s\r\n" % (
            path, self.host, self.port, len(data), ctype)
        head += "".join("%s: %s\r\n" % kv for kv in xms.items())
        head += "Authorization: SharedKey %s:%s\r\nConnection: close\r\n\r\n" % (account, sig)
        sock = self.connect()
        try:
            sock.sendall(head.encode("latin-1") + data)
            reader = Reader(sock)
            status_line, _ = parse_head(reader.head())
            return status_line.split(" ")[1]
        finally:
            sock.close()

    # ---- answers of the proxy's own ---------------------------------------
    @staticmethod
    def answer(client, status, body, ctype="application/json", extra=(), no_body=False):
        head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n" % (
            status, REASONS.get(status, "Error"), ctype, len(body), formatdate(usegmt=True))
        head += "".join("%s: %s\r\n" % kv for kv in extra) + "\r\n"
        client.sendall(head.encode("latin-1") + (b"" if no_body else body))

    def error(self, client, method, rule):
        status = int(rule.get("status", 503))
        code = rule.get("code", ERROR_CODES.get(status, "InternalError"))
        request_id = str(uuid.uuid4())
        message = "%s\nRequestId:%s\nTime:%s" % (
            rule.get("message", ERROR_MESSAGES.get(code, "Injected by blob_proxy.py.")), request_id,
            time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()))
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>'
                % (code, message)).encode()
        extra = [("x-ms-error-code", code), ("x-ms-request-id", request_id), ("x-ms-version", API_VERSION)]
        if "retry_after" in rule:
            extra.append(("Retry-After", str(rule["retry_after"])))
        if rule.get("close"):
            extra.append(("Connection", "close"))
        self.answer(client, status, body, "application/xml", extra, no_body=(method == "HEAD"))
        return status, len(body)

    def control(self, client, method, path, body):
        st = self.state
        try:
            if method == "POST" and path == "/_proxy/rules":
                rules = json.loads(body or b"null")
                ids = [st.add(r) for r in (rules if isinstance(rules, list) else [rules])]
                out = {"ids": ids}
            elif method == "GET" and path == "/_proxy/rules":
                with st.lock:
                    out = list(st.rules)
            elif method == "GET" and path == "/_proxy/stats":
                with st.lock:
                    out = json.loads(json.dumps(st.stats))
            elif method == "GET" and path == "/_proxy/log":
                with st.lock:
                    text = "".join(json.dumps(e) + "\n" for e in st.log)
                return self.answer(client, 200, text.encode(), "application/x-ndjson")
            elif method == "POST" and path == "/_proxy/clear":
                with st.lock:
                    st.rules, st.stats, st.log = [], {}, []
                out = {}
            else:
                return self.answer(client, 404, b'{"error": "no such control path"}')
        except (ValueError, re.error) as e:
            return self.answer(client, 400, json.dumps({"error": str(e)}).encode())
        self.answer(client, 200, json.dumps(out).encode())

    # ---- one client connection --------------------------------------------
    def serve(self, client):
        reader = Reader(client)
        try:
            while self.exchange(client, reader):
                pass
        except (OSError, EOFError, ValueError):
            pass
        finally:
            try:
                client.close()
            except OSError:
                pass

    def exchange(self, client, reader):
        """One request and its answer; False when the connection is done."""
        head = reader.head()
        if head is None:
            return False
        request_line, headers = parse_head(head)
        method, target, _ = request_line.split(" ", 2)
        path, _, query = target.partition("?")
        if header(headers, "expect", "").lower() == "100-continue":
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = b"".join(line + b"\r\n" for line in head.split(b"\r\n")[:-2]
                            if not line.lower().startswith(b"expect:")) + b"\r\n"
        close_after = header(headers, "connection", "").lower() == "close"
        if path.startswith("/_proxy/"):
            body = bytearray()
            length = int(header(headers, "content-length", "0"))
            while len(body) < length:
                data = reader.some(length - len(body))
                if not data:
                    raise EOFError
                body += data
            self.control(client, method, path, bytes(body))
            return not close_after

        comp = (parse_qs(query).get("comp") or ["-"])[0]
        key = "%s %s" % (method, comp)
        rule = self.state.take(method, target)
        action = rule["action"] if rule else None
        entry = {"method": method, "target": re.sub(r"(?i)([?&]sig=)[^&]*", r"\1REDACTED", target),
                 "action": action,
                 "if_match": header(headers, "if-match"), "if_none_match": header(headers, "if-none-match"),
                 "range": header(headers, "x-ms-range") or header(headers, "range")}
        self.state.count(key, "requests", 1)

        if action in ("error", "reset"):
            n = relay_body(reader, None, headers)
            self.state.count(key, "bytes", n)
            self.state.count(key, "injected", 1)
            entry["bytes"] = n
            if action == "reset":
                entry.update(status=None, resp_bytes=0)
                self.state.record(entry)
                reset(client)
                return False
            status, size = self.error(client, method, rule)
            entry.update(status=status, resp_bytes=size)
            self.state.record(entry)
            return not (close_after or rule.get("close"))

        if action == "delay":
            time.sleep(float(rule.get("seconds", 5)))
        if action == "overwrite":
            entry["overwrite_status"] = self.overwrite(path, rule.get("data", "another writer\n").encode())
        return self.forward(client, reader, method, head, headers, key, entry, rule, close_after)

    def forward(self, client, reader, method, head, headers, key, entry, rule, close_after):
        action = rule["action"] if rule else None
        upstream = self.connect()
        try:
            upstream.sendall(head)
            n = relay_body(reader, upstream, headers)
            self.state.count(key, "bytes", n)
            entry["bytes"] = n
            up = Reader(upstream)
            while True:                       # 1xx answers are relayed as they come
                resp_head = up.head()
                if resp_head is None:
                    raise EOFError
                status_line, resp_headers = parse_head(resp_head)
                status = int(status_line.split(" ")[1])
                if status >= 200 or status == 101:
                    break
                client.sendall(resp_head)
            entry["status"] = status
            if action in ("reset-after", "cut"):
                self.state.count(key, "injected", 1)
            if action == "reset-after":
                entry["resp_bytes"] = 0
                self.state.record(entry)
                reset(client)
                return False
            client.sendall(resp_head)
            no_body = method == "HEAD" or status in (204, 304)
            limit = int(rule.get("bytes", 0)) if action == "cut" else None
            m = relay_body(up, client, resp_headers, none=no_body, limit=limit, until_eof=True)
            self.state.count(key, "resp_bytes", m)
            entry["resp_bytes"] = m
            self.state.record(entry)
            if action == "cut":
                reset(client)
                return False
            framed = no_body or header(resp_headers, "content-length") is not None or \
                "chunked" in header(resp_headers, "transfer-encoding", "").lower()
            return framed and not close_after and header(resp_headers, "connection", "").lower() != "close"
        finally:
            upstream.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--cafile")
    ap.add_argument("--port-file")
    ap.add_argument("--exit-with", type=int)
    args = ap.parse_args()
    proxy = Proxy(args.upstream, args.cafile)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    port = server.getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(args.port_file + ".tmp", args.port_file)
    print(port, flush=True)
    server.settimeout(0.5)
    while True:
        if args.exit_with:
            try:
                os.kill(args.exit_with, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                pass
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        client.settimeout(300)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=proxy.serve, args=(client,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
