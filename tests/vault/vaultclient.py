"""vaultclient.py — start the local key vault test double and talk to it.

Shared by selftest.py and loadgen.py.  Plain http.client and ssl only, so it
runs on Debian's /usr/bin/python3 as well as any newer Python.
"""

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "vault_server.py")
API = "api-version=7.4"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ServerProcess:
    """vault_server.py in a subprocess, with one client secret of its own."""

    def __init__(self, directory, *extra_args, client_id="renc-test"):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.client_id = client_id
        self.secret = b64url(os.urandom(24))
        secret_file = os.path.join(directory, "client.secret")
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.secret)
        self.log_path = os.path.join(directory, "vault.log")
        self.out_path = os.path.join(directory, "server.out")
        args = [sys.executable, SERVER, "--dir", directory,
                "--client", "%s=%s" % (client_id, secret_file),
                "--log", self.log_path, "--exit-with", str(os.getpid())] + list(extra_args)
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT)
        self.ready = self._wait_ready(os.path.join(directory, "ready.json"))
        self.port = self.ready["port"]
        self.http_port = self.ready["http_port"]
        self.ca = self.ready["ca"]
        self.tenant = self.ready["tenant"]
        self.url = self.ready["vault"]
        self.host = self.ready["vault_host"]
        self.resource = self.ready["resource"]

    def _wait_ready(self, path, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vault_server exited with %s:\n%s"
                                   % (self.proc.returncode, self.output()))
            try:
                with open(path) as f:
                    return json.load(f)
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("vault_server not ready after %.0f s:\n%s" % (timeout_s, self.output()))

    def output(self):
        if not self.out.closed:
            self.out.flush()
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout_s=10.0):
        """SIGTERM, then SIGKILL if it lingers; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode

    # ---- clients -----------------------------------------------------------

    def tls_context(self):
        return ssl.create_default_context(cafile=self.ca)

    def connection(self, host=None, timeout_s=10.0):
        """A verified HTTPS connection to the server under host (default: the vault's)."""
        return LoopbackHTTPSConnection(host or self.host, self.port, context=self.tls_context(),
                                       timeout=timeout_s)

    def plain_connection(self, timeout_s=10.0):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout_s)

    def client(self, token=None):
        return Client(self, token)

    def admin(self, method, path, body=None):
        """Call /_admin; raises unless the answer is 2xx."""
        status, _, data = call(self.connection(), method, "/_admin" + path, body)
        if not 200 <= status < 300:
            raise RuntimeError("admin %s %s -> %s %s" % (method, path, status, data))
        return data

    def token(self, secret=None):
        """(status, body) of a client-credentials request."""
        form = urllib.parse.urlencode({
            "client_id": self.client_id, "client_secret": secret or self.secret,
            "grant_type": "client_credentials", "scope": self.resource + "/.default",
        })
        status, _, data = call(self.connection(), "POST", "/%s/oauth2/v2.0/token" % self.tenant,
                               form, {"Content-Type": "application/x-www-form-urlencoded"})
        return status, data

    def access_token(self):
        status, data = self.token()
        if status != 200:
            raise RuntimeError("token request failed: %s %s" % (status, data))
        return data["access_token"]


class LoopbackHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a name under .localhost, which glibc does not resolve.

    RFC 6761 puts every *.localhost name on loopback (libcurl and the test's
    Node harness resolve them so); this connects to 127.0.0.1 and still sends
    and verifies the name (SNI, certificate).
    """

    def connect(self):
        if self.host != "localhost" and not self.host.endswith(".localhost"):
            return super().connect()
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        return None


def call(conn, method, path, body=None, headers=None, close=True):
    """(status, headers dict with lower-case names, parsed JSON body or None)."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        if close:
            conn.close()
    parsed = None
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
    return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed


class Client:
    """Key vault data-plane calls over one reused (keep-alive) connection."""

    def __init__(self, server, token=None):
        self.server = server
        self.token = token if token is not None else server.access_token()
        self.conn = server.connection()

    def request(self, method, path, body=None, headers=None):
        """Call PATH, adding api-version=7.4 unless PATH names one."""
        if "api-version=" not in path:
            path += ("&" if "?" in path else "?") + API
        return self.raw(method, path, body, headers)

    def raw(self, method, path, body=None, headers=None):
        """Call PATH as given, with the bearer token."""
        all_headers = {"Authorization": "Bearer " + self.token} if self.token else {}
        all_headers.update(headers or {})
        return call(self.conn, method, path, body, all_headers, close=False)

    def get_key(self, name, version=""):
        return self.request("GET", "/keys/%s/%s" % (name, version) if version else "/keys/" + name)

    def wrap(self, kid_or_name, alg, data, op="wrapkey"):
        path = "/keys/%s/%s" % (kid_or_name, op)
        return self.request("POST", path, {"alg": alg, "value": b64url(data)})

    def unwrap(self, kid_or_name, alg, data):
        return self.wrap(kid_or_name, alg, data, op="unwrapkey")

    def close(self):
        self.conn.close()


def key_path(kid):
    """'name/version' of a kid URL."""
    return "/".join(urllib.parse.urlsplit(kid).path.split("/")[2:4])
