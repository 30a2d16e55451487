#!/usr/bin/env python3
"""vault_server.py — a local test double of Azure Key Vault and its token endpoints.

This is NOT a key vault.  It is a test double of the real service, for the
end-to-end tests of reencrypt's key vault provider: it answers the same REST
shapes, status codes, error bodies and headers as the real service
(tests/vault/README.md; what the client relies on: docs/KEYVAULT.md), keeps its keys in memory
only, and adds a test-only control surface (/_admin) that the real service
does not have.  Nothing here is hardened; never point it at real data.

What it serves
  HTTPS on 127.0.0.1:PORT (TLS 1.2+, certificate from a test CA it makes at
  start-up; DIR/ca.pem is the CA certificate, the CA key never leaves memory),
  as https://127.0.0.1:PORT or, with --vault-host NAME, as https://NAME:PORT:
    GET    /keys/{name}[/{version}]           Get Key (no version = latest)
    GET    /keys/{name}/versions              List Key Versions (paged)
    PATCH  /keys/{name}/{version}             Update Key (attributes, key_ops)
    POST   /keys/{name}[/{version}]/wrapkey   Wrap Key
    POST   /keys/{name}[/{version}]/unwrapkey Unwrap Key
    POST   /{tenant}/oauth2/v2.0/token        Entra client-credentials grant (secret,
                                              certificate assertion, federated token)
    GET    /{tenant}/v2.0/.well-known/openid-configuration   Entra authority metadata
    *      /_admin/...                        test controls (see README.md)
  plain HTTP on 127.0.0.1:HTTP_PORT, managed-identity endpoints only, as the
  real metadata endpoints are plain HTTP:
    GET    /metadata/identity/oauth2/token    VM managed identity (IMDS)
    GET    /msi/token                         App Service managed identity

Start-up writes DIR/ready.json atomically once both listeners accept
connections; SIGTERM (or SIGINT) stops the server and removes ready.json.

It runs on Debian 12's /usr/bin/python3 (3.11) with python3-cryptography
38.0.4 and on newer cryptography releases: only APIs present in 38 are used.

Deviations from the real service are listed in README.md.
"""

import argparse
import base64
import collections
import datetime
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

# What @azure/keyvault-keys 4.10 sends (2025-07-01 by default, 7.5 and 7.6 on
# request) besides the 7.4 the tool sends; the shapes served are 7.4's, which
# the later versions only extend.
API_VERSIONS = ("7.4", "7.5", "7.6", "2025-07-01")
VAULT_NAME = "localvault"            # appears in ForbiddenByPolicy messages
VAULT_LOCATION = "local"
MANAGED_IDENTITY_ID = "managed-identity"
DEFAULT_TENANT = "8f3e4c2a-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
DEFAULT_RESOURCE = "https://127.0.0.1"
DEFAULT_PERMISSIONS = ("get", "list", "wrapKey", "unwrapKey")

# Key permission names of an access policy; admin calls are checked against
# this list so a typo in a test fails instead of silently withdrawing access.
KNOWN_PERMISSIONS = (
    "get", "list", "update", "create", "import", "delete", "recover",
    "backup", "restore", "decrypt", "encrypt", "unwrapKey", "wrapKey",
    "verify", "sign", "purge", "release", "rotate",
    "getrotationpolicy", "setrotationpolicy",
)
PERMISSION_BY_LOWER = {p.lower(): p for p in KNOWN_PERMISSIONS}

RSA_SIZES = (2048, 3072, 4096)
OCT_SIZES = (128, 192, 256)
KEY_TYPES = ("RSA", "RSA-HSM", "oct-HSM")
RSA_KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey")
OCT_KEY_OPS = ("encrypt", "decrypt", "wrapKey", "unwrapKey")
KEY_NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
VERSION_RE = re.compile(r"^[0-9a-f]{32}$")
HOST_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

RSA_ALGS = ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5")
AES_KW_ALGS = {"A128KW": 16, "A192KW": 24, "A256KW": 32}

MAX_BODY_BYTES = 1 << 20
HANDSHAKE_TIMEOUT_S = 10
IDLE_TIMEOUT_S = 300                 # keep-alive connections idle this long are closed
MAX_PAGE = 25

THROTTLED_MESSAGE = ("Request was not processed because too many requests were received. "
                     "Reason: VaultRequestTypeLimitReached")
FWLINK_NOT_FOUND = "https://go.microsoft.com/fwlink/?linkid=2125182"
FWLINK_POLICY = "https://go.microsoft.com/fwlink/?linkid=2125287"

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


def b64url_encode(data):
    """Base64url without padding, as the service sends every binary field."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    """Decode base64url with or without padding; None if it is not base64url.

    Only the URL-safe alphabet is accepted: a client sending '+' or '/' has a
    bug the tests should see.
    """
    if not isinstance(text, str) or not _B64URL_RE.match(text):
        return None
    bare = text.rstrip("=")
    if len(bare) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except ValueError:
        return None


def now_s():
    return int(time.time())


def utc_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def client_oid(client_id):
    """A stable object id per client, as a directory would have one."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "renc-vault-double/" + client_id))


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class Response:
    """What a route answers; the HTTP layer turns it into bytes."""

    def __init__(self, status, body, headers=None):
        self.status = status
        self.body = body            # a JSON-able object
        self.headers = headers or {}


DROP = object()                      # answer nothing, close the connection


class ApiError(Exception):
    """A key vault error: {"error":{"code","message"[,"innererror":{"code"}]}}."""

    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = headers or {}

    def response(self):
        error = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return Response(self.status, {"error": error}, self.headers)


def bad_parameter(message):
    return ApiError(400, "BadParameter", message)


class OAuthError(Exception):
    """An Entra token endpoint error: {"error","error_description",...}."""

    def __init__(self, status, error, description, code=None):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.code = code

    def response(self):
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = utc_stamp()
        body = {
            "error": self.error,
            "error_description": "%s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
            % (self.description, trace_id, correlation_id, stamp),
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }
        if self.code is not None:
            body["error_codes"] = [self.code]
            body["error_uri"] = "https://login.microsoftonline.com/error?code=%d" % self.code
        return Response(self.status, body)


# --------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------

def make_tls_context(directory, host_names=()):
    """Make a test CA and a server certificate for 127.0.0.1, localhost and host_names.

    Writes DIR/ca.pem (the CA certificate) and DIR/server.pem (the server
    certificate).  The CA key is dropped when this returns; the server key is
    written to a private temporary file only long enough for OpenSSL to load
    it.  EC P-256 keys: quick to make, and cheap handshakes.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reencrypt test vault CA")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    end = start + datetime.timedelta(days=30)
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                + [x509.DNSName(name) for name in host_names]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_path = os.path.join(directory, "ca.pem")
    write_atomically(ca_path, ca_cert.public_bytes(pem))
    write_atomically(os.path.join(directory, "server.pem"), server_cert.public_bytes(pem))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    key_pem = server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, key_path = tempfile.mkstemp(dir=directory, prefix=".server-key.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(server_cert.public_bytes(pem) + key_pem)
        context.load_cert_chain(key_path)
    finally:
        os.unlink(key_path)
    return context, ca_path


def write_atomically(path, data, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

class KeyVersion:
    """One version of a key: material, attributes, allowed operations."""

    def __init__(self, name, kty, size, key_ops, enabled, nbf, exp, tags):
        self.name = name
        self.version = secrets.token_hex(16)        # 32 lowercase hex, as the service
        self.kty = kty
        self.size = size
        self.key_ops = list(key_ops)
        self.enabled = enabled
        self.nbf = nbf
        self.exp = exp
        self.tags = dict(tags)
        self.created = self.updated = now_s()
        if kty == "oct-HSM":
            self.secret = os.urandom(size // 8)
            self.private_key = self.public_key = None
        else:
            self.secret = None
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=size)
            self.public_key = self.private_key.public_key()

    @property
    def size_class(self):
        """The throttling class: the service limits per key type and size."""
        return "%s-%d" % (self.kty, self.size)

    def kid(self, base_url):
        return "%s/keys/%s/%s" % (base_url, self.name, self.version)

    def attributes(self):
        attrs = {"enabled": self.enabled}
        if self.nbf is not None:
            attrs["nbf"] = self.nbf
        if self.exp is not None:
            attrs["exp"] = self.exp
        attrs.update({
            "created": self.created,
            "updated": self.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        })
        return attrs

    def bundle(self, base_url):
        """KeyBundle: public material for RSA, none for oct (it never leaves the HSM)."""
        key = {"kid": self.kid(base_url), "kty": self.kty, "key_ops": list(self.key_ops)}
        if self.public_key is not None:
            numbers = self.public_key.public_numbers()
            key["n"] = b64url_encode(int_bytes(numbers.n))
            key["e"] = b64url_encode(int_bytes(numbers.e))
        out = {"key": key, "attributes": self.attributes()}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out

    def item(self, base_url):
        """KeyItem of a versions list: no key material."""
        out = {"kid": self.kid(base_url), "attributes": self.attributes()}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


def int_bytes(value):
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


class KeyStore:
    """Keys by name, each a list of versions in creation order (last = latest).

    Names are case-insensitive, as in the service; the kid keeps the spelling
    the key was created with.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}

    def add(self, key):
        with self.lock:
            versions = self.keys.setdefault(key.name.lower(), [])
            if versions:
                key.name = versions[0].name
            versions.append(key)

    def versions(self, name):
        with self.lock:
            return list(self.keys.get(name.lower(), ()))

    def find(self, name, version):
        """The version asked for (latest when version is empty), or KeyNotFound."""
        versions = self.versions(name)
        if versions and not version:
            return versions[-1]
        for key in versions:
            if key.version == version.lower():
                return key
        shown = name if not version else "%s/%s" % (name, version)
        raise ApiError(
            404, "KeyNotFound",
            "A key with (name/id) %s was not found in this key vault. If you recently "
            "deleted this key you may be able to recover it using the correct recovery "
            "command. For help resolving this issue, please see %s" % (shown, FWLINK_NOT_FOUND),
        )

    def delete(self, name, version):
        with self.lock:
            versions = self.keys.get(name.lower(), [])
            if not version:
                return self.keys.pop(name.lower(), None) is not None
            kept = [k for k in versions if k.version != version.lower()]
            self.keys[name.lower()] = kept
            return len(kept) != len(versions)


# --------------------------------------------------------------------------
# Identities and tokens
# --------------------------------------------------------------------------

class Principal:
    """Who a token was issued to: a client id and its directory object id."""

    def __init__(self, client_id):
        self.client_id = client_id
        self.oid = client_oid(client_id)


class TokenRecord:
    def __init__(self, principal, expires_at):
        self.principal = principal
        self.expires_at = expires_at


class Directory:
    """Clients with secrets, the managed identity, tokens and permissions."""

    def __init__(self, tenant, resource, lifetime_s, client_secrets):
        self.tenant = tenant
        self.resource = resource
        self.lifetime_s = lifetime_s
        self.client_secrets = client_secrets  # client id -> secret (str)
        self.signing_key = os.urandom(32)
        self.lock = threading.Lock()
        self.tokens = {}
        self.permissions = {}                 # client id -> set of lower-case names

    def issuer(self):
        return "https://sts.windows.net/%s/" % self.tenant

    def issue(self, principal, resource):
        """A JWT-shaped bearer token (opaque to clients) and when it was issued.

        It is valid for exactly lifetime_s seconds from then (no clock-skew
        grace), so expiry tests need not wait a whole extra second.
        """
        issued_at = time.time()
        issued, expires_at = int(issued_at), int(issued_at) + self.lifetime_s
        header = {"typ": "JWT", "alg": "HS256"}
        claims = {
            "aud": resource, "iss": self.issuer(), "iat": issued, "nbf": issued,
            "exp": expires_at, "appid": principal.client_id, "oid": principal.oid,
            "tid": self.tenant, "sub": principal.oid, "jti": secrets.token_hex(8),
        }
        signing_input = b64url_encode(json_bytes(header)) + "." + b64url_encode(json_bytes(claims))
        mac = hmac.new(self.signing_key, signing_input.encode("ascii"), hashlib.sha256).digest()
        token = signing_input + "." + b64url_encode(mac)
        with self.lock:
            self._prune_locked()
            self.tokens[token] = TokenRecord(principal, issued_at + self.lifetime_s)
        return token, issued_at

    def _prune_locked(self):
        # Tokens are few (clients cache them); prune only when the table grows.
        if len(self.tokens) > 1000:
            cutoff = time.time()
            for token in [t for t, r in self.tokens.items() if r.expires_at <= cutoff]:
                del self.tokens[token]

    def lookup(self, token):
        with self.lock:
            return self.tokens.get(token)

    def revoke_all(self):
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
            return count

    def allowed(self, client_id, permission):
        with self.lock:
            granted = self.permissions.get(client_id)
        if granted is None:
            granted = {p.lower() for p in DEFAULT_PERMISSIONS}
        return permission.lower() in granted

    def set_permissions(self, client_id, names):
        with self.lock:
            self.permissions[client_id] = {n.lower() for n in names}

    def permission_table(self):
        with self.lock:
            table = {c: sorted(PERMISSION_BY_LOWER[p] for p in s) for c, s in self.permissions.items()}
        table["*default*"] = list(DEFAULT_PERMISSIONS)
        return table

    def resource_matches(self, value):
        return value in (self.resource, self.resource + "/")


# --------------------------------------------------------------------------
# Client assertions: certificate credentials and workload identity
# --------------------------------------------------------------------------

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
CLOCK_SKEW_S = 300                   # Entra's tolerance for nbf and exp
MAX_ASSERTION_AHEAD_S = 3600         # this double's bound on a certificate assertion's exp


def assertion_error(code, message, status=401, error="invalid_client"):
    return OAuthError(status, error, "AADSTS%d: %s" % (code, message), code)


def split_jwt(text):
    """(header, claims, signing input, signature) of a compact JWS, or None."""
    parts = text.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]) or b"null")
        claims = json.loads(b64url_decode(parts[1]) or b"null")
    except ValueError:
        return None
    signature = b64url_decode(parts[2])
    if not isinstance(header, dict) or not isinstance(claims, dict) or signature is None:
        return None
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature


class RegisteredCert:
    """A certificate uploaded to an application registration."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.cert = x509.load_pem_x509_certificate(f.read())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        self.x5t = b64url_encode(hashlib.sha1(der).digest())
        self.x5t_s256 = b64url_encode(hashlib.sha256(der).digest())


class ClientAssertions:
    """Entra's checks of a client assertion (RFC 7523): a JWT signed with an
    application's registered certificate, or a Kubernetes service-account
    token matched against a federated identity credential.  The double is
    also the cluster's OIDC issuer: it mints the service-account tokens the
    tests write into AZURE_FEDERATED_TOKEN_FILE (POST /_admin/federated/token)
    and can revoke one so that it fails as an expired one would."""

    def __init__(self, certs, federated, issuer):
        self.certs = certs                 # client id -> RegisteredCert
        self.federated = federated         # client id -> subject
        self.issuer = issuer
        self.issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.issuer_kid = secrets.token_hex(8)
        self.lock = threading.Lock()
        self.used_jti = {}                 # certificate assertions: jti -> exp
        self.revoked = set()               # service-account token jtis
        self.grants = collections.Counter()

    def knows(self, client_id):
        return client_id in self.certs or client_id in self.federated

    def count(self, grant, client_id):
        with self.lock:
            self.grants[grant] += 1
            self.grants[grant + ":" + client_id] += 1

    def snapshot(self):
        with self.lock:
            return dict(self.grants)

    def verify(self, form, client_id, token_url):
        """Returns the grant ("certificate" or "federated") or raises OAuthError."""
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(400, "invalid_request",
                             "AADSTS50027: The client_assertion_type is not supported.", 50027)
        jwt = split_jwt(form.get("client_assertion") or "")
        if jwt is None:
            raise assertion_error(50027, "JWT token is invalid or malformed.", 400,
                                  "invalid_request")
        header, claims = jwt[0], jwt[1]
        if client_id in self.federated and claims.get("iss") == self.issuer:
            self.verify_federated(client_id, jwt)
            return "federated"
        if client_id in self.certs:
            self.verify_certificate(client_id, jwt, token_url)
            return "certificate"
        raise assertion_error(700027, "Client assertion failed signature validation. No "
                              "credential is registered for application '%s' that this "
                              "assertion could be checked with." % client_id)

    def verify_certificate(self, client_id, jwt, token_url):
        header, claims, signing_input, signature = jwt
        reg = self.certs[client_id]
        alg = header.get("alg")
        if alg == "PS256":
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            thumb_ok = header.get("x5t#S256") == reg.x5t_s256 or header.get("x5t") == reg.x5t
        elif alg == "RS256":
            pad = padding.PKCS1v15()
            thumb_ok = header.get("x5t") == reg.x5t or header.get("x5t#S256") == reg.x5t_s256
        else:
            raise assertion_error(700027, "Client assertion contains an invalid signature. "
                                  "Unsupported algorithm '%s'." % alg)
        if not thumb_ok:
            raise assertion_error(700027, "Client assertion failed signature validation. The "
                                  "key used (x5t) is not registered on application '%s'."
                                  % client_id)
        try:
            reg.cert.public_key().verify(signature, signing_input, pad, hashes.SHA256())
        except Exception:
            raise assertion_error(700027, "Client assertion failed signature validation.")
        self.check_claims(client_id, claims, token_url)

    def check_claims(self, client_id, claims, token_url):
        if claims.get("aud") != token_url:
            raise assertion_error(50013, "Assertion audience claim does "
                                  "not match the token endpoint '%s'." % token_url)
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise assertion_error(50013, "Assertion issuer and subject must be the client id "
                                  "'%s'." % client_id)
        self.check_times(claims, MAX_ASSERTION_AHEAD_S)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise assertion_error(50013, "Assertion has no jti claim.")
        with self.lock:
            now = time.time()
            for old in [j for j, exp in self.used_jti.items() if exp < now - CLOCK_SKEW_S]:
                del self.used_jti[old]
            if jti in self.used_jti:
                raise assertion_error(50013, "Assertion jti '%s' was already used (replay)." % jti)
            self.used_jti[jti] = claims["exp"]

    @staticmethod
    def check_times(claims, max_ahead_s):
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now - CLOCK_SKEW_S:
            raise assertion_error(700024, "Client assertion is not within its valid time range.")
        if max_ahead_s is not None and exp > now + max_ahead_s + CLOCK_SKEW_S:
            raise assertion_error(700024, "Client assertion is not within its valid time range: "
                                  "exp is too far in the future.")
        if not isinstance(nbf, int) or isinstance(nbf, bool) or nbf > now + CLOCK_SKEW_S:
            raise assertion_error(700024, "Client assertion is not within its valid time range: "
                                  "nbf is in the future.")

    def verify_federated(self, client_id, jwt):
        header, claims, signing_input, signature = jwt
        if header.get("alg") != "RS256":
            raise assertion_error(700027, "Client assertion contains an invalid signature.")
        try:
            self.issuer_key.public_key().verify(signature, signing_input, padding.PKCS1v15(),
                                                hashes.SHA256())
        except Exception:
            raise assertion_error(700027, "Client assertion failed signature validation.")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if FEDERATED_AUDIENCE not in audiences:
            raise assertion_error(700212, "No matching federated identity record found for "
                                  "presented assertion audience '%s'." % audience, 400,
                                  "invalid_request")
        if claims.get("sub") != self.federated[client_id]:
            raise assertion_error(700213, "No matching federated identity record found for "
                                  "presented assertion subject '%s'." % claims.get("sub"), 400,
                                  "invalid_request")
        with self.lock:
            revoked = claims.get("jti") in self.revoked
        self.check_times(claims, None)
        if revoked:
            raise assertion_error(700024, "Client assertion is not within its valid time range.")

    def mint(self, client_id, lifetime_s, subject=None, audience=None):
        """A service-account token, as the cluster's issuer signs it."""
        now = int(time.time())
        claims = {
            "aud": [audience or FEDERATED_AUDIENCE], "exp": now + lifetime_s, "iat": now,
            "nbf": now, "iss": self.issuer, "jti": str(uuid.uuid4()),
            "sub": subject or self.federated.get(client_id, "system:serviceaccount:default:none"),
        }
        header = {"alg": "RS256", "kid": self.issuer_kid}
        signing_input = b64url_encode(json_bytes(header)) + "." + b64url_encode(json_bytes(claims))
        signature = self.issuer_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                         hashes.SHA256())
        return {"token": signing_input + "." + b64url_encode(signature), "jti": claims["jti"],
                "exp": claims["exp"]}

    def revoke(self, jti):
        with self.lock:
            self.revoked.add(jti)


def read_client_certs(specs):
    certs = {}
    for spec in specs:
        client_id, sep, path = spec.partition("=")
        if not sep or not client_id or not path:
            raise SystemExit("vault_server: --client-cert wants ID=CERT.pem, got %r" % spec)
        certs[client_id] = RegisteredCert(path)
    return certs


def read_federated(specs):
    federated = {}
    for spec in specs:
        client_id, sep, subject = spec.partition("=")
        if not sep or not client_id or not subject:
            raise SystemExit("vault_server: --federated wants ID=SUBJECT, got %r" % spec)
        federated[client_id] = subject
    return federated


# --------------------------------------------------------------------------
# Throttling and statistics
# --------------------------------------------------------------------------

class RateLimiter:
    """Requests per window, per key class, counted over a sliding window.

    The service's limits read "N transactions per 10 s".  A classic token
    bucket admits up to 2N in some 10 s windows (a full bucket plus the
    refill), so the limit is enforced as a sliding-window log instead: a
    request is admitted when fewer than N admitted requests of its class fall
    in the last `window` seconds.  Refused (429) requests do not count, as the
    service documents.

    The same lock also records every admitted request in a global log, which
    gives `max_in_window`: the most admitted requests seen in any window.
    The maximum over all windows is reached by a window ending at an admitted
    request, so checking at each admission is exact.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.limit = 0                     # 0 = off
        self.window_s = 10.0
        self.retry_after = None            # None, an int of seconds, or "auto"
        self.by_class = {}                 # class -> deque of admission times
        self.reset_stats()

    def reset_stats(self):
        with self.lock:
            self.admitted = collections.deque()
            self.admitted_by_class = {}
            self.max_in_window = 0
            self.max_by_class = {}

    def configure(self, limit, window_s, retry_after):
        with self.lock:
            self.limit = limit
            self.window_s = window_s
            self.retry_after = retry_after
            self.by_class = {}

    def settings(self):
        with self.lock:
            return {"limit": self.limit, "window": self.window_s, "retry_after": self.retry_after}

    def admit(self, size_class):
        """Record an admitted request, or raise the 429 the service sends."""
        with self.lock:
            t = time.monotonic()
            horizon = t - self.window_s
            if self.limit:
                log = self.by_class.setdefault(size_class, collections.deque())
                trim(log, horizon)
                if len(log) >= self.limit:
                    raise self._throttled(log[0] + self.window_s - t)
                log.append(t)
            self.max_in_window = max(self.max_in_window, record(self.admitted, t, horizon))
            class_log = self.admitted_by_class.setdefault(size_class, collections.deque())
            self.max_by_class[size_class] = max(
                self.max_by_class.get(size_class, 0), record(class_log, t, horizon)
            )

    def _throttled(self, wait_s):
        headers = {}
        if self.retry_after == "auto":
            headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
        elif self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return ApiError(429, "Throttled", THROTTLED_MESSAGE, headers=headers)

    def snapshot(self):
        with self.lock:
            return self.max_in_window, dict(self.max_by_class), self.window_s


def trim(log, horizon):
    while log and log[0] <= horizon:
        log.popleft()


def record(log, t, horizon):
    log.append(t)
    trim(log, horizon)
    return len(log)


class Stats:
    """Counters for /_admin/stats.  Operation counts are successful (200) answers."""

    NAMES = (
        "get", "list", "wrapkey", "unwrapkey", "update", "token", "requests",
        "throttled", "faults", "delayed", "unauthorized", "forbidden", "not_found",
        "bad_request", "connections", "tls_handshakes", "tls_failures", "http_connections",
    )

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.counts = dict.fromkeys(self.NAMES, 0)
            self.by_status = collections.Counter()

    def bump(self, name, amount=1):
        with self.lock:
            self.counts[name] += amount

    def status(self, status):
        with self.lock:
            self.by_status[str(status)] += 1

    def snapshot(self):
        with self.lock:
            out = dict(self.counts)
            out["by_status"] = dict(self.by_status)
            return out


STATUS_STAT = {400: "bad_request", 401: "unauthorized", 403: "forbidden",
               404: "not_found", 429: "throttled"}


# --------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------

FAULT_TARGETS = ("keys", "token", "all")
FAULT_CODES = {408: "RequestTimeout", 429: "Throttled", 500: "InternalServerError",
               502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


class Faults:
    """Failures the next requests suffer: a status, a dropped connection, a delay.

    Each kind is set independently by POST /_admin/faults and applies to key
    vault requests ("keys", the default), token requests ("token") or both
    ("all").  A request suffers at most one of drop/status/every (in that
    order); a delay comes on top of whichever outcome the request gets.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.clear()

    def clear(self):
        self.status = None      # {"status", "count", "retry_after", "on"}
        self.drop = None        # {"count", "on"}
        self.delay = None       # {"delay_ms", "count" or None, "on"}
        self.every = None       # {"every", "status", "seen", "on"}

    def configure(self, body):
        check_fields(body, ("status", "count", "drop", "delay_ms", "every",
                            "retry_after", "on", "clear"))
        on = body.get("on", "keys")
        if on not in FAULT_TARGETS:
            raise admin_error("'on' must be one of %s" % ", ".join(FAULT_TARGETS))
        with self.lock:
            if body.get("clear"):
                self.clear()
                return
            if "drop" in body:
                self.drop = {"count": want_int(body, "drop", 0), "on": on}
            elif "delay_ms" in body:
                count = body.get("count")
                self.delay = {"delay_ms": want_int(body, "delay_ms", 0),
                              "count": None if count is None else want_int(body, "count", 0),
                              "on": on}
            elif "every" in body:
                self.every = {"every": want_int(body, "every", 1),
                              "status": want_status(body), "seen": 0, "on": on}
            elif "status" in body:
                self.status = {"status": want_status(body), "count": want_int(body, "count", 0),
                               "retry_after": body.get("retry_after"), "on": on}
            else:
                raise admin_error("give one of status+count, drop, delay_ms, every, clear")

    def settings(self):
        with self.lock:
            return {"status": self.status, "drop": self.drop,
                    "delay": self.delay, "every": self.every}

    def next(self, category):
        """(delay_s, outcome) for one request; outcome is None, DROP or a Response."""
        with self.lock:
            delay_s = 0.0
            if applies(self.delay, category) and self.delay["count"] != 0:
                delay_s = self.delay["delay_ms"] / 1000.0
                if self.delay["count"] is not None:
                    self.delay["count"] -= 1
            if applies(self.drop, category) and self.drop["count"] > 0:
                self.drop["count"] -= 1
                return delay_s, DROP
            if applies(self.status, category) and self.status["count"] > 0:
                self.status["count"] -= 1
                return delay_s, fault_response(self.status["status"], self.status["retry_after"])
            if applies(self.every, category):
                self.every["seen"] += 1
                if self.every["seen"] % self.every["every"] == 0:
                    return delay_s, fault_response(self.every["status"], None)
            return delay_s, None


class Triggers:
    """Admin calls armed to run when the Nth successful operation of a kind
    has been answered, counted from the arming: a test waits on an event of
    the run it drives (its 20th wrap), not on a clock, so a loaded machine
    changes nothing.  A trigger fires once."""

    OPS = ("get", "list", "wrapkey", "unwrapkey")

    def __init__(self):
        self.lock = threading.Lock()
        self.armed = []

    def clear(self):
        with self.lock:
            self.armed = []

    def arm(self, op, count, action):
        with self.lock:
            self.armed.append({"after": op, "left": count, "action": action})

    def fired(self, op):
        due = []
        with self.lock:
            for trigger in self.armed:
                if trigger["after"] == op:
                    trigger["left"] -= 1
                    if trigger["left"] == 0:
                        due.append(trigger["action"])
            self.armed = [t for t in self.armed if t["left"] > 0]
        return due

    def settings(self):
        with self.lock:
            return {"armed": [{"after": t["after"], "left": t["left"],
                               "then": "/" + "/".join(t["action"]["parts"])}
                              for t in self.armed]}


def applies(fault, category):
    return fault is not None and fault["on"] in (category, "all")


def fault_response(status, retry_after):
    code = FAULT_CODES.get(status, "Fault%d" % status)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    # An injected 429 reads as the service's own, so clients see one shape.
    message = THROTTLED_MESSAGE if status == 429 else "Injected fault: the request was not processed."
    return ApiError(status, code, message, headers=headers).response()


def want_status(body):
    status = want_int(body, "status", 100)
    if status > 599:
        raise admin_error("'status' must be an HTTP status")
    return status


# --------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------

# Query parameters whose values are safe to log; every other value is masked
# ($skiptoken, client_id, object_id, resource... are harmless but the rule is
# simpler as an allow-list).
LOGGABLE_QUERY = ("api-version", "maxresults")


def loggable_target(target):
    # Not urlsplit: it reads "//TENANT/oauth2/..." as a host and a path, and
    # the log must show what the client sent.
    path, _, query_text = target.partition("?")
    path = path.partition("#")[0]
    query = []
    for name, value in urllib.parse.parse_qsl(query_text, keep_blank_values=True):
        query.append("%s=%s" % (name, value if name in LOGGABLE_QUERY else "*"))
    return path + ("?" + "&".join(query) if query else "")


class RequestLog:
    """One line per request: time, listener, peer port, method, path, status, ms.

    Never the headers or the body: they hold tokens, secrets and key bytes.
    """

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", buffering=1, encoding="utf-8") if path else None

    def write(self, listener, peer_port, method, target, status, elapsed_s):
        if self.file is None:
            return
        line = "%s %s %s %s %s %s %.1fms\n" % (
            utc_stamp(), listener, peer_port, method, loggable_target(target), status,
            elapsed_s * 1000.0,
        )
        with self.lock:
            self.file.write(line)


# --------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------

class Request:
    def __init__(self, listener, method, target, headers, body):
        self.listener = listener          # "https" or "http"
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        parts = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parts.path)
        self.query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))

    def json(self):
        """The body as a JSON object, or 400 BadParameter."""
        try:
            value = json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError):
            raise bad_parameter("The request body is not valid JSON.")
        if not isinstance(value, dict):
            raise bad_parameter("The request body must be a JSON object.")
        return value


TOKEN_PATH_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
OPENID_PATH_RE = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
IMDS_TOKEN_PATHS = ("/metadata/identity/oauth2/token", "/metadata/identity/oauth2/token/")
OPERATION_PERMISSION = {"get": "get", "list": "list", "update": "update",
                        "wrapkey": "wrapKey", "unwrapkey": "unwrapKey"}
THROTTLED_OPS = ("get", "wrapkey", "unwrapkey")


class VaultService:
    """Routes requests to the key vault, token, managed-identity and admin APIs."""

    def __init__(self, directory, identity_header, log):
        self.directory = directory
        self.identity_header = identity_header
        self.log = log
        self.store = KeyStore()
        self.limiter = RateLimiter()
        self.stats = Stats()
        self.faults = Faults()
        self.triggers = Triggers()
        self.network = None               # None, "firewall" or "private-link"
        # Set once the HTTPS port is known (see vault_urls): the vault URL as
        # kids spell it, the origin nextLink spells (always with its port),
        # and the token authority.
        self.base_url = self.link_origin = self.authority_url = None
        self.admin = AdminApi(self)

    # ---- entry point ------------------------------------------------------

    def dispatch(self, request):
        """Response or DROP for one request; delays from fault injection happen here."""
        if request.listener == "http":
            return self._counted(request, "token", self.managed_identity)
        if request.path == "/_admin" or request.path.startswith("/_admin/"):
            try:
                return self.admin.handle(request)
            except ApiError as error:
                return error.response()
        if TOKEN_PATH_RE.match(request.path):
            return self._counted(request, "token", self.token_endpoint)
        if OPENID_PATH_RE.match(request.path):
            return self._counted(request, "token", self.openid_configuration)
        return self._counted(request, "keys", self.keys_api)

    def _counted(self, request, category, route):
        self.stats.bump("requests")
        delay_s, outcome = self.faults.next(category)
        if delay_s:
            self.stats.bump("delayed")
            time.sleep(delay_s)
        if outcome is not None:
            self.stats.bump("faults")
            self.stats.status("dropped" if outcome is DROP else outcome.status)
            return outcome
        try:
            response = route(request)
        except (ApiError, OAuthError) as error:
            response = error.response()
            if isinstance(error, ApiError) and error.status in STATUS_STAT:
                self.stats.bump(STATUS_STAT[error.status])
        self.stats.status(response.status)
        return response

    # ---- key vault data plane --------------------------------------------

    def keys_api(self, request):
        operation, name, version = parse_key_route(request.method, request.path)
        check_api_version(request.query)
        principal = self.authenticate(request)
        self.check_network(request, principal)
        self.authorize(principal, operation)
        if operation == "list":
            return Response(200, self.list_versions(request, name))
        key = self.store.find(name, version)
        if operation in THROTTLED_OPS:
            self.limiter.admit(key.size_class)
        if operation == "get":
            result = key.bundle(self.base_url)
        elif operation == "update":
            result = self.update_key(key, request.json())
        else:
            result = self.wrap_or_unwrap(operation, key, request.json())
        self.stats.bump(operation)
        for action in self.triggers.fired(operation):
            self.admin.apply("POST", action["parts"], action["body"])
        return Response(200, result)

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self.unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        record = self.directory.lookup(token.strip())
        if record is None:
            raise self.unauthorized(
                "[BearerReadAccessTokenFailed] Error validating token: 'S2S12005'.")
        if record.expires_at <= time.time():
            raise self.unauthorized("[TokenExpired] Error validating token: 'S2S12086'.")
        return record.principal

    def unauthorized(self, message):
        challenge = 'Bearer authorization="%s/%s", resource="%s"' % (
            self.authority_url, self.directory.tenant, self.directory.resource)
        return ApiError(401, "Unauthorized", message, headers={"WWW-Authenticate": challenge})

    def check_network(self, request, principal):
        """The vault's network rules, checked after the token (the service's
        403 names the caller) and before the access policy."""
        rule = self.network
        if rule is None:
            return
        caller = "appid=%s;oid=%s;iss=%s" % (principal.client_id, principal.oid,
                                             self.directory.issuer())
        vault = "%s;location=%s" % (VAULT_NAME, VAULT_LOCATION)
        if rule == "firewall":
            raise ApiError(403, "Forbidden",
                           "Client address is not authorized and caller is not a trusted "
                           "service.\r\nClient address: %s\r\nCaller: %s\r\nVault: %s"
                           % ("127.0.0.1", caller, vault), inner="ForbiddenByFirewall")
        raise ApiError(403, "Forbidden",
                       "Public network access is disabled and request is not from a trusted "
                       "service nor via an approved private link.\r\nCaller: %s\r\nVault: %s"
                       % (caller, vault), inner="ForbiddenByConnection")

    def authorize(self, principal, operation):
        permission = OPERATION_PERMISSION[operation]
        if self.directory.allowed(principal.client_id, permission):
            return
        raise ApiError(
            403, "Forbidden",
            "The user, group or application 'appid=%s;oid=%s;iss=%s' does not have keys %s "
            "permission on key vault '%s;location=%s'. For help resolving this issue, please "
            "see %s" % (principal.client_id, principal.oid, self.directory.issuer(), permission,
                        VAULT_NAME, VAULT_LOCATION, FWLINK_POLICY),
            inner="ForbiddenByPolicy",
        )

    def list_versions(self, request, name):
        page_size = parse_maxresults(request.query.get("maxresults"))
        offset = parse_skiptoken(request.query.get("$skiptoken"), name)
        versions = self.store.versions(name)
        if not versions:
            self.store.find(name, "")                      # raises KeyNotFound
        page = versions[offset:offset + page_size]
        next_link = None
        if offset + page_size < len(versions):
            token = b64url_encode(json_bytes({"NextMarker": offset + page_size, "Key": name.lower()}))
            next_link = "%s/keys/%s/versions?api-version=%s&$skiptoken=%s&maxresults=%d" % (
                self.link_origin, versions[0].name, request.query["api-version"], token, page_size)
        self.stats.bump("list")
        return {"value": [k.item(self.base_url) for k in page], "nextLink": next_link}

    def update_key(self, key, body):
        check_fields(body, ("attributes", "key_ops", "tags"), error=bad_parameter)
        attributes = body.get("attributes", {})
        if not isinstance(attributes, dict):
            raise bad_parameter("'attributes' must be an object.")
        changes = parse_attributes(attributes, key.kty, error=bad_parameter,
                                   allowed=("enabled", "nbf", "exp"))
        if "key_ops" in body:
            changes["key_ops"] = parse_key_ops(body["key_ops"], key.kty, bad_parameter)
        if "tags" in body:
            if not isinstance(body["tags"], dict):
                raise bad_parameter("'tags' must be an object.")
            changes["tags"] = body["tags"]
        apply_changes(self.store, key, changes)
        return key.bundle(self.base_url)

    def wrap_or_unwrap(self, operation, key, body):
        alg, value = body.get("alg"), body.get("value")
        if not isinstance(alg, str) or not alg:
            raise bad_parameter("The parameter 'alg' is required.")
        if not isinstance(value, str):
            raise bad_parameter("The parameter 'value' is required.")
        data = b64url_decode(value)
        if data is None:
            raise bad_parameter("The parameter 'value' is not valid base64url.")
        check_alg(key, alg)
        if operation == "wrapkey":
            check_may_wrap(key)
            result = wrap(key, alg, data)
        else:
            check_may_unwrap(key)
            result = unwrap(key, alg, data)
        return {"kid": key.kid(self.base_url), "value": b64url_encode(result)}

    # ---- token endpoints -------------------------------------------------

    def token_endpoint(self, request):
        """POST /{tenant}/oauth2/v2.0/token, client credentials grant."""
        tenant = TOKEN_PATH_RE.match(request.path).group(1)
        check_raw_token_path(request)
        if tenant.lower() != self.directory.tenant.lower():
            raise OAuthError(
                400, "invalid_tenant",
                "AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant." % tenant, 90002)
        if request.method != "POST":
            raise OAuthError(400, "invalid_request",
                             "AADSTS900561: The endpoint only accepts POST requests.", 900561)
        form = parse_form(request)
        for field in ("grant_type", "client_id"):
            if not form.get(field):
                raise missing_parameter(field)
        if form["grant_type"] != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type",
                             "AADSTS70003: The app requested an unsupported grant type '%s'."
                             % form["grant_type"], 70003)
        client_id = form["client_id"]
        self.authenticate_client(form, client_id, tenant)
        resource = self.scope_resource(form.get("scope"))
        token, _ = self.directory.issue(Principal(client_id), resource)
        self.stats.bump("token")
        lifetime = self.directory.lifetime_s
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime,
                              "ext_expires_in": lifetime, "access_token": token})

    def authenticate_client(self, form, client_id, tenant):
        """The client's credential: a secret, or a client assertion (a JWT
        signed with a registered certificate, or a federated token)."""
        expected = self.directory.client_secrets.get(client_id)
        assertions = self.directory.assertions
        if expected is None and not assertions.knows(client_id):
            raise OAuthError(
                400, "unauthorized_client",
                "AADSTS700016: Application with identifier '%s' was not found in the directory "
                "'%s'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant."
                % (client_id, self.directory.tenant), 700016)
        if form.get("client_assertion") or form.get("client_assertion_type"):
            token_url = "%s/%s/oauth2/v2.0/token" % (self.authority_url, tenant)
            assertions.count(assertions.verify(form, client_id, token_url), client_id)
            return
        secret = form.get("client_secret")
        if not secret:
            raise OAuthError(401, "invalid_client",
                             "AADSTS7000218: The request body must contain the following "
                             "parameter: 'client_assertion' or 'client_secret'.", 7000218)
        if expected is None or not hmac.compare_digest(secret.encode("utf-8"),
                                                       expected.encode("utf-8")):
            raise OAuthError(
                401, "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                "the request is the client secret value, not the client secret ID, for a secret "
                "added to app '%s'." % client_id, 7000215)
        assertions.count("client_secret", client_id)

    def openid_configuration(self, request):
        """GET /{tenant}/v2.0/.well-known/openid-configuration: the authority's metadata.

        MSAL (under @azure/identity) reads it before its first token request
        and sends the grant to the token_endpoint it names.  The fields are
        those of the Entra v2.0 document; every URL is on this authority.
        """
        tenant = OPENID_PATH_RE.match(request.path).group(1)
        if tenant.lower() != self.directory.tenant.lower():
            raise tenant_not_found(tenant)
        if request.method != "GET":
            return Response(405, {"error": "invalid_request",
                                  "error_description": "Only GET is supported."})
        return Response(200, openid_document(self.authority_url, self.directory.tenant))

    def scope_resource(self, scope):
        if not scope:
            raise missing_parameter("scope")
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise OAuthError(
                400, "invalid_scope",
                "AADSTS1002012: The provided value for scope %s is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI)." % scope, 1002012)
        resource = scopes[0][:-len("/.default")]
        if not self.directory.resource_matches(resource):
            raise invalid_resource(resource, self.directory.tenant)
        return self.directory.resource

    def managed_identity(self, request):
        """The plain-HTTP listener: IMDS and App Service token endpoints only."""
        if request.path in IMDS_TOKEN_PATHS:
            return self.imds_token(request)
        if request.path == "/msi/token":
            return self.app_service_token(request)
        return Response(404, {"error": "not_found", "error_description": "No such endpoint."})

    def imds_token(self, request):
        if request.method != "GET":
            return Response(405, {"error": "invalid_request",
                                  "error_description": "Only GET is supported."})
        if request.headers.get("Metadata", "").lower() != "true":
            return Response(400, {"error": "invalid_request",
                                  "error_description": "Required metadata header not specified"})
        if not request.query.get("api-version"):
            return Response(400, {"error": "invalid_request",
                                  "error_description": "Required query variable 'api-version' "
                                                       "is missing"})
        principal, resource = self.managed_request(request, ("client_id", "object_id", "msi_res_id"))
        token, issued_at = self.directory.issue(principal, self.directory.resource)
        self.stats.bump("token")
        lifetime = self.directory.lifetime_s
        # IMDS sends every number as a JSON string.
        return Response(200, {
            "access_token": token, "refresh_token": "",
            "expires_in": str(lifetime), "expires_on": str(int(issued_at) + lifetime),
            "not_before": str(int(issued_at)), "resource": resource, "token_type": "Bearer",
        })

    def app_service_token(self, request):
        if request.method != "GET":
            return Response(405, {"error": "invalid_request",
                                  "error_description": "Only GET is supported."})
        header = request.headers.get("X-IDENTITY-HEADER")
        if header is None:
            return Response(400, {"error": "invalid_request",
                                  "error_description": "The X-IDENTITY-HEADER header is missing."})
        if self.identity_header is None or not hmac.compare_digest(
                header.encode("utf-8"), self.identity_header.encode("utf-8")):
            return Response(401, {"error": "unauthorized",
                                  "error_description": "The X-IDENTITY-HEADER value is not valid."})
        if request.query.get("api-version") != "2019-08-01":
            return Response(400, {"error": "invalid_request",
                                  "error_description": "api-version must be 2019-08-01."})
        principal, resource = self.managed_request(request, ("client_id", "principal_id", "mi_res_id"))
        token, issued_at = self.directory.issue(principal, self.directory.resource)
        self.stats.bump("token")
        expires_on = int(issued_at) + self.directory.lifetime_s
        return Response(200, {"access_token": token, "expires_on": str(expires_on),
                              "resource": resource, "token_type": "Bearer",
                              "client_id": principal.client_id})

    def managed_request(self, request, selectors):
        """The identity and resource a managed-identity request names, or an error."""
        resource = request.query.get("resource")
        if not resource:
            raise OAuthError(400, "invalid_request",
                             "Required audience variable 'resource' is missing")
        if not self.directory.resource_matches(resource):
            raise invalid_resource(resource, self.directory.tenant)
        principal = Principal(MANAGED_IDENTITY_ID)
        client_sel, object_sel, resid_sel = selectors
        if (request.query.get(client_sel, MANAGED_IDENTITY_ID) != MANAGED_IDENTITY_ID
                or request.query.get(object_sel, principal.oid) != principal.oid
                or resid_sel in request.query):
            raise OAuthError(400, "invalid_request", "Identity not found")
        return principal, resource


# ---- request parsing helpers ----------------------------------------------

def parse_key_route(method, path):
    """(operation, name, version) of a /keys request, or an error.

    Accepted: /keys/{name}, /keys/{name}/ and /keys/{name}/{version} (GET,
    PATCH), /keys/{name}/versions (GET), /keys/{name}[/{version}]/wrapkey and
    .../unwrapkey (POST).  An empty version means the latest, as SDKs send.
    """
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "keys" or not parts[2]:
        raise ApiError(404, "NotFound", "The requested resource was not found.")
    name = parts[2]
    if not KEY_NAME_RE.match(name):
        raise bad_parameter("The request URI contains an invalid name: %s" % name)
    rest = parts[3:]
    last = rest[-1].lower() if rest else ""
    if last in ("wrapkey", "unwrapkey"):
        if len(rest) > 2:
            raise ApiError(404, "NotFound", "The requested resource was not found.")
        require_method(method, ("POST",))
        return last, name, rest[0] if len(rest) == 2 else ""
    if len(rest) == 1 and rest[0].lower() == "versions":
        require_method(method, ("GET",))
        return "list", name, ""
    if len(rest) > 1:
        raise ApiError(404, "NotFound", "The requested resource was not found.")
    version = rest[0] if rest else ""
    require_method(method, ("GET", "PATCH"))
    return ("get" if method == "GET" else "update"), name, version


def require_method(method, allowed):
    if method not in allowed:
        raise ApiError(405, "MethodNotAllowed",
                       "The requested resource does not support http method '%s'." % method)


def check_api_version(query):
    version = query.get("api-version")
    if not version:
        raise bad_parameter("The 'api-version' query parameter is missing.")
    if version not in API_VERSIONS:
        raise bad_parameter("The specified version (%s) is not recognized. Consider using the "
                            "latest supported version (%s)." % (version, API_VERSIONS[-1]))


def parse_maxresults(text):
    if text is None:
        return MAX_PAGE
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE:
        raise bad_parameter("Invalid value for 'maxresults': it must be between 1 and %d."
                            % MAX_PAGE)
    return value


def parse_skiptoken(text, name):
    if text is None:
        return 0
    raw = b64url_decode(text)
    try:
        marker = json.loads(raw.decode("utf-8"))
        offset = marker["NextMarker"]
        if marker["Key"] != name.lower() or not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (AttributeError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise bad_parameter("The $skiptoken is not valid.")


def check_raw_token_path(request):
    """http.server folds a leading '//' into '/' (gh-87389) before we see the
    path; Entra does not: '//TENANT/oauth2/v2.0/token' is not its token
    endpoint.  The request line keeps what the client sent."""
    raw = getattr(request, "raw_target", request.target)
    if raw.startswith("//"):
        raise OAuthError(404, "invalid_request",
                         "AADSTS90002: No token endpoint at '%s' (an empty path segment)."
                         % loggable_target(raw), 90002)


def parse_form(request):
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request",
                         "AADSTS900561: The request body must be "
                         "application/x-www-form-urlencoded.", 900561)
    try:
        pairs = urllib.parse.parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "AADSTS90014: The request body is malformed.",
                         90014)
    return dict(pairs)


def tenant_not_found(tenant):
    return OAuthError(
        400, "invalid_tenant",
        "AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud. Check with your subscription administrator, "
        "this may happen if there are no active subscriptions for the tenant." % tenant, 90002)


def openid_document(authority, tenant):
    """The Entra v2.0 OpenID configuration of one tenant, on this authority.

    Field for field the public cloud's document (as recorded in MSAL's and
    the Azure SDKs' test recordings), its login.microsoftonline.com URLs on
    this authority instead; userinfo stays on Microsoft Graph, as there.
    """
    base = "%s/%s" % (authority, tenant)
    return {
        "token_endpoint": base + "/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": base + "/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": base + "/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": base + "/oauth2/v2.0/authorize",
        "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": base + "/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                             "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                             "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                             "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": base + "/kerberos",
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def missing_parameter(name):
    return OAuthError(400, "invalid_request",
                      "AADSTS900144: The request body must contain the following parameter: "
                      "'%s'." % name, 900144)


def invalid_resource(resource, tenant):
    return OAuthError(
        400, "invalid_resource",
        "AADSTS500011: The resource principal named %s was not found in the tenant named %s. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant." % (resource, tenant), 500011)


# ---- key operations --------------------------------------------------------

def check_alg(key, alg):
    if alg not in RSA_ALGS and alg not in AES_KW_ALGS:
        raise bad_parameter("Invalid algorithm '%s'." % alg)
    if (alg in RSA_ALGS) != (key.kty != "oct-HSM"):
        raise bad_parameter("Algorithm %s is not supported for key type %s." % (alg, key.kty))
    if alg in AES_KW_ALGS and AES_KW_ALGS[alg] * 8 != key.size:
        raise bad_parameter("Algorithm %s needs a %d-bit key; this key has %d bits."
                            % (alg, AES_KW_ALGS[alg] * 8, key.size))


def check_may_wrap(key):
    """wrapKey needs the op in key_ops and a key inside its nbf/exp window.

    A disabled key still wraps: the service's allow-list keeps wrap, encrypt
    and verify working on disabled keys.
    """
    if "wrapKey" not in key.key_ops:
        raise key_operation_forbidden("wrapKey")
    t = now_s()
    if key.nbf is not None and t < key.nbf:
        raise ApiError(403, "Forbidden",
                       "Operation wrapKey is not allowed on a key that is not yet valid.")
    if key.exp is not None and t >= key.exp:
        raise ApiError(403, "Forbidden", "Operation wrapKey is not allowed on an expired key.")


def check_may_unwrap(key):
    """unwrapKey needs an enabled key and the op in key_ops; nbf/exp do not
    matter, so data wrapped under an expired key stays readable."""
    if not key.enabled:
        raise ApiError(403, "Forbidden", "Operation unwrapKey is not allowed on a disabled key.",
                       inner="KeyDisabled")
    if "unwrapKey" not in key.key_ops:
        raise key_operation_forbidden("unwrapKey")


def key_operation_forbidden(operation):
    return ApiError(403, "Forbidden", "Operation %s is not permitted on this key." % operation,
                    inner="KeyOperationForbidden")


def rsa_padding(alg):
    if alg == "RSA-OAEP":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if alg == "RSA-OAEP-256":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                            label=None)
    return padding.PKCS1v15()


def wrap(key, alg, data):
    if alg in AES_KW_ALGS:
        if len(data) < 16 or len(data) % 8:
            raise bad_parameter("The key to wrap must be a multiple of 8 bytes and at least 16 "
                                "bytes for %s." % alg)
        return aes_key_wrap(key.secret, data)
    try:
        return key.public_key.encrypt(data, rsa_padding(alg))
    except ValueError:
        raise bad_parameter("The value is too long to wrap with %s under a %d-bit key."
                            % (alg, key.size))


def unwrap(key, alg, data):
    try:
        if alg in AES_KW_ALGS:
            return aes_key_unwrap(key.secret, data)
        return key.private_key.decrypt(data, rsa_padding(alg))
    except (ValueError, InvalidUnwrap, InvalidKey):
        raise bad_parameter("Unwrap failed: the value could not be decrypted with this key "
                            "and algorithm.")


# ---- attributes shared by Update Key and the admin API ---------------------

def parse_attributes(body, kty, error, allowed):
    """Validated subset of {enabled, nbf, exp} (null clears nbf or exp)."""
    changes = {}
    for field, value in body.items():
        if field not in allowed:
            raise error("Unknown attribute '%s'." % field)
        if field == "enabled":
            if not isinstance(value, bool):
                raise error("'enabled' must be true or false.")
        elif value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise error("'%s' must be an IntDate (Unix seconds) or null." % field)
        changes[field] = value
    return changes


def parse_key_ops(value, kty, error):
    allowed = OCT_KEY_OPS if kty == "oct-HSM" else RSA_KEY_OPS
    if not isinstance(value, list) or any(op not in allowed for op in value):
        raise error("'key_ops' must be a list of %s." % ", ".join(allowed))
    return list(dict.fromkeys(value))


def apply_changes(store, key, changes):
    with store.lock:
        for field, value in changes.items():
            setattr(key, field, value)
        key.updated = now_s()


# --------------------------------------------------------------------------
# Admin API (test-only)
# --------------------------------------------------------------------------

def admin_error(message, status=400):
    return ApiError(status, "BadRequest", message)


def check_fields(body, allowed, error=admin_error):
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise error("Unknown field(s): %s." % ", ".join(unknown))


def want_int(body, field, minimum):
    value = body.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise admin_error("'%s' must be an integer >= %d." % (field, minimum))
    return value


class AdminApi:
    """The test controls under /_admin.  No authentication: test-only surface."""

    def __init__(self, service):
        self.service = service

    def handle(self, request):
        parts = [p for p in request.path.split("/")[2:] if p]
        method = request.method
        body = self.body(request) if method == "POST" else {}
        return Response(200, self.apply(method, parts, body))

    def apply(self, method, parts, body):
        """One admin call (also what an armed trigger runs)."""
        if parts[:1] == ["keys"] and len(parts) >= 2:
            return self.keys(method, parts[1:], body).body
        routes = {
            ("POST", "access"): self.set_access,
            ("GET", "access"): lambda _: self.service.directory.permission_table(),
            ("POST", "throttle"): self.set_throttle,
            ("GET", "throttle"): lambda _: self.service.limiter.settings(),
            ("POST", "faults"): self.set_faults,
            ("GET", "faults"): lambda _: self.service.faults.settings(),
            ("GET", "stats"): lambda _: self.stats(),
            ("POST", "stats/reset"): self.reset_stats,
            ("POST", "tokens/revoke"): self.revoke_tokens,
            ("POST", "network"): self.set_network,
            ("GET", "network"): lambda _: {"deny": self.service.network},
            ("POST", "triggers"): self.set_trigger,
            ("GET", "triggers"): lambda _: self.service.triggers.settings(),
            ("POST", "federated/token"): self.federated_token,
            ("POST", "federated/revoke"): self.federated_revoke,
            ("GET", "grants"): lambda _: self.service.directory.assertions.snapshot(),
        }
        route = routes.get((method, "/".join(parts)))
        if route is None:
            raise ApiError(404, "NotFound", "No admin route %s /_admin/%s." % (method, "/".join(parts)))
        return route(body)

    def set_trigger(self, body):
        check_fields(body, ("after", "count", "then", "clear"))
        if body.get("clear"):
            self.service.triggers.clear()
            return self.service.triggers.settings()
        op, then = body.get("after"), body.get("then")
        if op not in Triggers.OPS:
            raise admin_error("'after' must be one of %s." % ", ".join(Triggers.OPS))
        count = want_int(body, "count", 1)
        if count < 1:
            raise admin_error("'count' must be at least 1.")
        if not isinstance(then, dict) or not isinstance(then.get("path"), str):
            raise admin_error("'then' must be {\"path\": \"/access\"..., \"body\": {...}}.")
        parts = [p for p in then["path"].split("/") if p]
        if parts[:1] == ["_admin"]:
            parts = parts[1:]
        action = {"parts": parts, "body": then.get("body") or {}}
        self.service.triggers.arm(op, count, action)
        return self.service.triggers.settings()

    @staticmethod
    def body(request):
        if not request.body:
            return {}
        try:
            value = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise admin_error("The body is not valid JSON.")
        if not isinstance(value, dict):
            raise admin_error("The body must be a JSON object.")
        return value

    # POST /_admin/keys/{name}: a new version (rotation).
    # DELETE /_admin/keys/{name}[/{version}]: remove a key or one version.
    # POST /_admin/keys/{name}/{version|latest}/attributes: change attributes.
    def keys(self, method, parts, body):
        name = parts[0]
        if not KEY_NAME_RE.match(name):
            raise admin_error("Key names match ^[0-9a-zA-Z-]{1,127}$.")
        if method == "POST" and len(parts) == 1:
            return Response(200, self.create_key(name, body))
        if method == "DELETE" and len(parts) <= 2:
            if not self.service.store.delete(name, parts[1] if len(parts) == 2 else ""):
                raise ApiError(404, "KeyNotFound", "No such key or version.")
            return Response(200, {"deleted": True})
        if method == "POST" and len(parts) == 3 and parts[2] == "attributes":
            version = "" if parts[1] == "latest" else parts[1]
            key = self.service.store.find(name, version)
            check_fields(body, ("enabled", "nbf", "exp", "key_ops", "tags"))
            changes = parse_attributes({k: v for k, v in body.items()
                                        if k in ("enabled", "nbf", "exp")},
                                       key.kty, admin_error, ("enabled", "nbf", "exp"))
            if "key_ops" in body:
                changes["key_ops"] = parse_key_ops(body["key_ops"], key.kty, admin_error)
            if "tags" in body:
                changes["tags"] = want_tags(body)
            apply_changes(self.service.store, key, changes)
            return Response(200, key.bundle(self.service.base_url))
        raise ApiError(404, "NotFound", "No admin route %s /_admin/keys/%s."
                       % (method, "/".join(parts)))

    def create_key(self, name, body):
        check_fields(body, ("kty", "size", "key_ops", "enabled", "nbf", "exp", "tags"))
        kty = body.get("kty", "RSA")
        if kty not in KEY_TYPES:
            raise admin_error("'kty' must be one of %s." % ", ".join(KEY_TYPES))
        sizes = OCT_SIZES if kty == "oct-HSM" else RSA_SIZES
        size = body.get("size", sizes[-1] if kty == "oct-HSM" else sizes[0])
        if size not in sizes:
            raise admin_error("'size' for %s must be one of %s." % (kty, sizes))
        attrs = parse_attributes({k: v for k, v in body.items() if k in ("enabled", "nbf", "exp")},
                                 kty, admin_error, ("enabled", "nbf", "exp"))
        default_ops = OCT_KEY_OPS if kty == "oct-HSM" else RSA_KEY_OPS
        key_ops = parse_key_ops(body.get("key_ops", list(default_ops)), kty, admin_error)
        key = KeyVersion(name, kty, size, key_ops, attrs.get("enabled", True),
                         attrs.get("nbf"), attrs.get("exp"), want_tags(body))
        self.service.store.add(key)
        return key.bundle(self.service.base_url)

    def set_access(self, body):
        check_fields(body, ("client", "permissions"))
        client, names = body.get("client"), body.get("permissions")
        if not isinstance(client, str) or not client:
            raise admin_error("'client' must name a client id.")
        if not isinstance(names, list) or any(
                not isinstance(n, str) or n.lower() not in PERMISSION_BY_LOWER for n in names):
            raise admin_error("'permissions' must be a list of %s." % ", ".join(KNOWN_PERMISSIONS))
        self.service.directory.set_permissions(client, names)
        return {"client": client, "permissions": names}

    def set_throttle(self, body):
        check_fields(body, ("limit", "window", "retry_after"))
        limit = body.get("limit") or 0
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise admin_error("'limit' must be a non-negative integer or null.")
        window = body.get("window", 10)
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise admin_error("'window' must be a positive number of seconds.")
        retry_after = body.get("retry_after")
        if retry_after is not None and retry_after != "auto" and (
                not isinstance(retry_after, int) or isinstance(retry_after, bool)
                or retry_after < 0):
            raise admin_error("'retry_after' must be null, \"auto\" or whole seconds.")
        self.service.limiter.configure(limit, float(window), retry_after)
        return self.service.limiter.settings()

    def set_faults(self, body):
        self.service.faults.configure(body)
        return self.service.faults.settings()

    def stats(self):
        out = self.service.stats.snapshot()
        out["max_in_window"], out["max_in_window_by_class"], out["window"] = \
            self.service.limiter.snapshot()
        return out

    def reset_stats(self, _body):
        self.service.stats.reset()
        self.service.limiter.reset_stats()
        return self.stats()

    def set_network(self, body):
        check_fields(body, ("deny",))
        deny = body.get("deny")
        if deny not in (None, "firewall", "private-link"):
            raise admin_error("'deny' must be null, \"firewall\" or \"private-link\".")
        self.service.network = deny
        return {"deny": deny}

    def revoke_tokens(self, _body):
        return {"revoked": self.service.directory.revoke_all()}

    # POST /_admin/federated/token {"client","lifetime","subject","audience"}:
    # a service-account token as the cluster's OIDC issuer signs it.
    def federated_token(self, body):
        check_fields(body, ("client", "lifetime", "subject", "audience"))
        client = body.get("client")
        if not isinstance(client, str) or not client:
            raise admin_error("'client' must name a client id.")
        lifetime = want_int(body, "lifetime", 1) if "lifetime" in body else 3600
        return self.service.directory.assertions.mint(client, lifetime, body.get("subject"),
                                                      body.get("audience"))

    # POST /_admin/federated/revoke {"jti"}: that token fails from now on.
    def federated_revoke(self, body):
        check_fields(body, ("jti",))
        if not isinstance(body.get("jti"), str):
            raise admin_error("'jti' must be a string.")
        self.service.directory.assertions.revoke(body["jti"])
        return {"revoked": body["jti"]}


def want_tags(body):
    tags = body.get("tags", {})
    if not isinstance(tags, dict) or any(not isinstance(v, str) for v in tags.values()):
        raise admin_error("'tags' must be an object of strings.")
    return tags


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class BodyError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    """One connection; keep-alive, every answer with Content-Length.

    Responses are buffered (wbufsize) so headers and body leave in one write
    and one TLS record; http.server flushes after every request.
    """

    protocol_version = "HTTP/1.1"
    server_version = "renc-vault-double/1.0"
    sys_version = ""
    wbufsize = 64 * 1024
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True      # small answers on a reused connection

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.counted = False              # has this connection served a non-admin request?

    def do_GET(self):
        self.serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def serve(self):
        started = time.monotonic()
        service = self.server.service
        try:
            body = self.read_body()
        except BodyError as error:
            self.close_connection = True
            response = ApiError(error.status, "BadParameter", str(error)).response()
            self.send(response, close=True)
            self.log_line(response.status, started)
            return
        request = Request(self.server.listener, self.command, self.path, self.headers, body)
        request.raw_target = self.raw_target()
        self.count_connection(request)
        try:
            response = service.dispatch(request)
        except Exception as error:             # a bug here must not kill the connection silently
            sys.stderr.write("vault_server: internal error on %s %s: %r\n"
                             % (self.command, loggable_target(self.path), error))
            response = ApiError(500, "InternalServerError", "Internal error.").response()
        if response is DROP:
            self.drop()
            self.log_line("dropped", started)
            return
        self.send(response)
        self.log_line(response.status, started)

    def count_connection(self, request):
        if self.counted or request.path.startswith("/_admin"):
            return
        self.counted = True
        self.server.service.stats.bump(
            "connections" if self.server.listener == "https" else "http_connections")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise BodyError(400, "Content-Length is not a number.")
        if size < 0 or size > MAX_BODY_BYTES:
            raise BodyError(413, "The request body is too large.")
        data = self.rfile.read(size)
        if len(data) != size:
            raise BodyError(400, "The request body is shorter than Content-Length.")
        return data

    def read_chunked(self):
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError(400, "Bad chunk size.")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass                          # trailers
                return bytes(data)
            if len(data) + size > MAX_BODY_BYTES:
                raise BodyError(413, "The request body is too large.")
            data += self.rfile.read(size)
            self.rfile.readline(1024)             # CRLF after the chunk

    def send(self, response, close=False):
        payload = b"" if response.body is None else json_bytes(response.body)
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def drop(self):
        """Close without a word: the client sees the connection end mid-request."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_error(self, code, message=None, explain=None):
        # http.server calls this for malformed requests; answer in JSON too.
        self.close_connection = True
        response = ApiError(code, "BadRequest" if code < 500 else "NotImplemented",
                            message or "Malformed request.").response()
        self.send(response, close=True)
        self.log_line(code, time.monotonic())

    def handle_expect_100(self):
        # The buffered writer would hold "100 Continue" back; send it now.
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def raw_target(self):
        """The target as the request line has it (self.path has '//' folded)."""
        parts = (getattr(self, "requestline", "") or "").split(" ")
        return parts[1] if len(parts) == 3 else getattr(self, "path", None)

    def log_line(self, status, started):
        port = self.client_address[1] if self.client_address else "-"
        self.server.service.log.write(self.server.listener, port, self.command or "-",
                                      self.raw_target() or "-", status,
                                      time.monotonic() - started)

    def log_request(self, code="-", size="-"):
        pass                                      # we log once per request, ourselves

    def log_message(self, format, *args):
        pass


QUIET_ERRORS = (ConnectionError, TimeoutError, ssl.SSLError, BrokenPipeError)


class VaultHTTPServer(ThreadingHTTPServer):
    """A thread per connection; errors from clients that hang up are not news."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address, service, listener, tls_context=None):
        super().__init__(address, Handler)
        self.service = service
        self.listener = listener
        self.tls_context = tls_context

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a
        # slow or broken client never holds up accept().
        if self.tls_context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            connection = self.tls_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            self.service.stats.bump("tls_failures")
            return
        self.service.stats.bump("tls_handshakes")
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            connection.close()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, QUIET_ERRORS):
            return
        super().handle_error(request, client_address)


# --------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Local test double of Azure Key Vault and its token endpoints (tests only).")
    parser.add_argument("--dir", required=True, help="folder for ca.pem, server.pem, ready.json")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (0 = any free port)")
    parser.add_argument("--http-port", type=int, default=0,
                        help="plain-HTTP managed-identity port (0 = any free port)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT)
    parser.add_argument("--client", action="append", default=[], metavar="ID=SECRET_FILE",
                        help="a client id and the file holding its secret (repeatable)")
    parser.add_argument("--vault-host", default=None, metavar="NAME",
                        help="serve the vault as https://NAME:PORT (NAME must resolve to "
                             "127.0.0.1, e.g. localvault.vault.localhost); the certificate "
                             "names it and RESOURCE defaults to its parent domain")
    parser.add_argument("--resource", default=None,
                        help="the token audience; scope must be RESOURCE/.default (default "
                             "%s, or https://PARENT with --vault-host)" % DEFAULT_RESOURCE)
    parser.add_argument("--client-cert", action="append", default=[], metavar="ID=CERT_PEM",
                        help="a client and its registered certificate (repeatable)")
    parser.add_argument("--federated", action="append", default=[], metavar="ID=SUBJECT",
                        help="a client's federated identity credential: the service account "
                             "subject (system:serviceaccount:NS:SA) it trusts (repeatable)")
    parser.add_argument("--token-lifetime", type=int, default=3600, metavar="SECONDS")
    parser.add_argument("--identity-header", default=None, metavar="VALUE",
                        help="the X-IDENTITY-HEADER value the App Service endpoint wants")
    parser.add_argument("--log", default=None, metavar="FILE", help="one line per request")
    parser.add_argument("--exit-with", type=int, default=None, metavar="PID",
                        help="exit when process PID is gone (tests pass their shell's pid)")
    args = parser.parse_args(argv)
    if args.token_lifetime < 1:
        parser.error("--token-lifetime must be at least 1")
    if args.vault_host is not None:
        labels = args.vault_host.lower().split(".")
        if len(labels) < 3 or not all(HOST_LABEL_RE.match(label) for label in labels):
            parser.error("--vault-host wants a DNS name of three labels or more "
                         "(VAULT.SERVICE.DOMAIN), got %r" % args.vault_host)
        args.vault_host = ".".join(labels)
    if args.resource is None:
        args.resource = (DEFAULT_RESOURCE if args.vault_host is None
                         else "https://" + args.vault_host.split(".", 1)[1])
    return args


def vault_urls(vault_host, port):
    """(base_url, link_origin) of the vault served on port.

    base_url is how kids spell the vault: no port when it is 443, as the
    service writes https://NAME.vault.azure.net/keys/...  link_origin is how
    nextLink spells it: always with the port, as the service writes
    https://NAME.vault.azure.net:443/keys/NAME/versions?...
    """
    host = vault_host or "127.0.0.1"
    link_origin = "https://%s:%d" % (host, port)
    return ("https://" + host if port == 443 else link_origin), link_origin


def read_client_secrets(specs):
    secrets_by_client = {}
    for spec in specs:
        client_id, sep, path = spec.partition("=")
        if not sep or not client_id or not path:
            raise SystemExit("vault_server: --client wants ID=SECRET_FILE, got %r" % spec)
        with open(path, encoding="utf-8") as f:
            secret = f.read().rstrip("\r\n")
        if not secret:
            raise SystemExit("vault_server: the secret file for %s is empty" % client_id)
        secrets_by_client[client_id] = secret
    return secrets_by_client


def start_listener(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    return thread


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    directory = os.path.abspath(args.dir)
    os.makedirs(directory, exist_ok=True)
    ready_path = os.path.join(directory, "ready.json")
    if os.path.exists(ready_path):
        os.unlink(ready_path)

    tls_context, ca_path = make_tls_context(directory, [args.vault_host] if args.vault_host else [])
    accounts = Directory(args.tenant, args.resource.rstrip("/"), args.token_lifetime,
                         read_client_secrets(args.client))
    accounts.assertions = ClientAssertions(read_client_certs(args.client_cert),
                                           read_federated(args.federated), None)
    service = VaultService(accounts, args.identity_header, RequestLog(args.log))

    https = VaultHTTPServer(("127.0.0.1", args.port), service, "https", tls_context)
    plain = VaultHTTPServer(("127.0.0.1", args.http_port), service, "http")
    port, http_port = https.server_address[1], plain.server_address[1]
    service.base_url, service.link_origin = vault_urls(args.vault_host, port)
    # The token authority is this server under its address: the vault's name
    # is the vault's, as login.microsoftonline.com is not the vault's host.
    service.authority_url = vault_urls(None, port)[0]
    accounts.assertions.issuer = service.authority_url + "/oidc/issuer"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start_listener(https)
    start_listener(plain)

    ready = {
        "pid": os.getpid(), "port": port, "http_port": http_port, "ca": ca_path,
        "vault": service.base_url, "vault_host": args.vault_host or "127.0.0.1",
        "tenant": args.tenant, "authority": service.authority_url,
        "resource": accounts.resource,
        "imds_endpoint": "http://127.0.0.1:%d/metadata/identity/oauth2/token" % http_port,
        "identity_endpoint": "http://127.0.0.1:%d/msi/token" % http_port,
        "managed_identity_client_id": MANAGED_IDENTITY_ID,
        "federated_issuer": accounts.assertions.issuer,
    }
    write_atomically(ready_path, json_bytes(ready) + b"\n")

    # Wake up now and then: signals are handled between waits, and a test
    # shell that died without stopping us is noticed.
    while not stop.wait(0.5):
        if args.exit_with is not None and not process_alive(args.exit_with):
            break

    for server in (https, plain):
        server.shutdown()
        server.server_close()
    try:
        os.unlink(ready_path)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
