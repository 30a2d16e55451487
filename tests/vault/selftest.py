#!/usr/bin/env python3
"""selftest.py — checks that vault_server.py behaves like the service it stands in for.

Starts the server in a temporary folder and drives it through plain
http.client and ssl: TLS, the 401 challenge, the three token endpoints, Get
Key, paged List Versions, wrap/unwrap in every algorithm, the attribute,
key_ops and access-policy rules, throttling, fault injection, token expiry,
keep-alive, the request log and a clean SIGTERM.  Every wrong answer is a
failure; the script prints one line per failure, a summary, and exits 1 if
anything failed (2 if the server could not be started).

    python3 tests/vault/selftest.py [-v]
"""

import http.client
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True          # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vaultclient import API, ServerProcess, b64url, call, key_path, unb64url  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

VERBOSE = "-v" in sys.argv
PASSED = []
FAILED = []
KID_RE = re.compile(r"^https://127\.0\.0\.1:\d+/keys/[0-9a-zA-Z-]+/[0-9a-f]{32}$")


def check(name, condition, detail=""):
    if condition:
        PASSED.append(name)
        if VERBOSE:
            print("ok   %s" % name)
    else:
        FAILED.append(name)
        print("FAIL %s%s" % (name, ": %s" % (detail,) if detail != "" else ""), flush=True)
    return condition


def error_code(body):
    """(code, innererror code) of a key vault error body, checking its shape."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return None, None
    error = body["error"]
    if not set(error) <= {"code", "message", "innererror"} or "message" not in error:
        return None, None
    inner = error.get("innererror", {}).get("code")
    return error.get("code"), inner


def check_error(name, answer, status, code, inner=None, message=None):
    got_status, headers, body = answer
    got_code, got_inner = error_code(body)
    ok = (got_status == status and got_code == code and got_inner == inner
          and headers.get("content-type") == "application/json; charset=utf-8")
    if ok and message is not None:
        ok = re.search(message, body["error"]["message"]) is not None
    check(name, ok, "%s %s" % (got_status, body))


# --------------------------------------------------------------------------

def test_tls(server):
    for host in ("127.0.0.1", "localhost"):
        conn = server.connection(host)
        status, headers, _ = call(conn, "GET", "/_admin/stats")
        check("tls: verified connection to %s" % host, status == 200)
    raw = ssl.create_default_context(cafile=server.ca).wrap_socket(
        __import__("socket").create_connection(("127.0.0.1", server.port)),
        server_hostname="127.0.0.1")
    check("tls: version 1.2 or later", raw.version() in ("TLSv1.2", "TLSv1.3"), raw.version())
    raw.close()
    conn = http.client.HTTPSConnection("127.0.0.1", server.port,
                                       context=ssl.create_default_context(), timeout=5)
    try:
        conn.request("GET", "/_admin/stats")
        conn.getresponse()
        check("tls: fails without the test CA", False, "connected")
    except ssl.SSLCertVerificationError:
        check("tls: fails without the test CA", True)
    finally:
        conn.close()


def test_challenge_and_api_version(server):
    answer = call(server.connection(), "GET", "/keys/kek1?" + API)
    status, headers, body = answer
    expected = 'Bearer authorization="https://127.0.0.1:%d/%s", resource="https://127.0.0.1"' % (
        server.port, server.tenant)
    check("challenge: 401 with WWW-Authenticate", status == 401
          and headers.get("www-authenticate") == expected, headers.get("www-authenticate"))
    check("challenge: body", body == {"error": {"code": "Unauthorized", "message": body.get(
        "error", {}).get("message")}} and body["error"]["message"], body)
    check("headers: x-ms-request-id", len(headers.get("x-ms-request-id", "")) >= 32)
    check("headers: content type",
          headers.get("content-type") == "application/json; charset=utf-8")
    check("headers: content length", headers.get("content-length") == str(
        len(json.dumps(body, separators=(",", ":")))))
    bogus = call(server.connection(), "GET", "/keys/kek1?" + API,
                 headers={"Authorization": "Bearer not-a-token"})
    check("challenge: unknown token is 401 with challenge", bogus[0] == 401
          and bogus[1].get("www-authenticate") == expected)

    client = server.client()
    check_error("api-version: missing is 400 BadParameter",
                client.raw("GET", "/keys/kek1"), 400, "BadParameter")
    check_error("api-version: unknown is 400 BadParameter naming the latest",
                client.request("GET", "/keys/kek1?api-version=1.0"), 400, "BadParameter",
                message=r"^The specified version \(1\.0\) is not recognized\. Consider using "
                        r"the latest supported version \(2025-07-01\)\.$")
    # What @azure/keyvault-keys 4.10 sends: 2025-07-01 by default, 7.5/7.6 on request.
    for version in ("7.5", "7.6", "2025-07-01"):
        check("api-version: %s accepted" % version,
              client.request("GET", "/keys/kek1?api-version=" + version)[0] == 404)
    client.close()


def test_client_credentials(server):
    status, body = server.token()
    check("token: client credentials 200", status == 200, body)
    check("token: body fields", body.get("token_type") == "Bearer"
          and body.get("expires_in") == 3600 and isinstance(body.get("expires_in"), int)
          and body.get("ext_expires_in") == 3600 and len(body.get("access_token", "")) > 20, body)
    status, body = server.token(secret="wrong")
    check("token: bad secret is 401 invalid_client", status == 401
          and body.get("error") == "invalid_client" and body.get("error_codes") == [7000215]
          and body.get("error_description", "").startswith("AADSTS7000215: Invalid client secret"),
          (status, body))

    def form_call(tenant, **fields):
        data = {"client_id": server.client_id, "client_secret": server.secret,
                "grant_type": "client_credentials", "scope": "https://127.0.0.1/.default"}
        data.update(fields)
        import urllib.parse
        return call(server.connection(), "POST", "/%s/oauth2/v2.0/token" % tenant,
                    urllib.parse.urlencode(data),
                    {"Content-Type": "application/x-www-form-urlencoded"})

    status, _, body = form_call("00000000-0000-0000-0000-000000000000")
    check("token: unknown tenant is 400", status == 400
          and body.get("error") == "invalid_tenant", (status, body))
    status, _, body = form_call(server.tenant, scope="https://vault.azure.net/.default")
    check("token: other resource is 400 invalid_resource", status == 400
          and body.get("error") == "invalid_resource", (status, body))
    status, _, body = form_call(server.tenant, scope="https://127.0.0.1")
    check("token: scope without /.default is 400", status == 400
          and body.get("error") == "invalid_scope", (status, body))
    status, _, body = form_call(server.tenant, client_id="nobody")
    check("token: unknown client is 400", status == 400
          and body.get("error") == "unauthorized_client", (status, body))
    status, _, body = form_call(server.tenant, grant_type="password")
    check("token: other grant is 400", status == 400
          and body.get("error") == "unsupported_grant_type", (status, body))


def test_openid_configuration(server):
    """The authority metadata MSAL reads before its first token request."""
    path = "/%s/v2.0/.well-known/openid-configuration" % server.tenant
    status, headers, body = call(server.connection("127.0.0.1"), "GET", path)
    base = "https://127.0.0.1:%d/%s" % (server.port, server.tenant)
    check("openid: 200 JSON", status == 200 and isinstance(body, dict)
          and headers.get("content-type", "").startswith("application/json"), (status, body))
    body = body if isinstance(body, dict) else {}
    check("openid: endpoints on this authority and tenant",
          body.get("token_endpoint") == base + "/oauth2/v2.0/token"
          and body.get("issuer") == base + "/v2.0"
          and body.get("authorization_endpoint") == base + "/oauth2/v2.0/authorize"
          and body.get("jwks_uri") == base + "/discovery/v2.0/keys", body)
    check("openid: client_secret_post among the auth methods",
          "client_secret_post" in body.get("token_endpoint_auth_methods_supported", ()), body)
    token_path = urllib.parse.urlsplit(body.get("token_endpoint", "")).path
    status, _, answer = call(server.connection("127.0.0.1"), "POST", token_path,
                             urllib.parse.urlencode({
                                 "client_id": server.client_id, "client_secret": server.secret,
                                 "grant_type": "client_credentials",
                                 "scope": server.resource + "/.default"}),
                             {"Content-Type": "application/x-www-form-urlencoded"})
    check("openid: its token_endpoint grants a token", status == 200
          and answer.get("token_type") == "Bearer", (status, answer))
    status, _, body = call(server.connection("127.0.0.1"), "GET",
                           "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/"
                           "openid-configuration")
    check("openid: unknown tenant is 400 invalid_tenant (AADSTS90002)", status == 400
          and body.get("error") == "invalid_tenant" and body.get("error_codes") == [90002],
          (status, body))


def test_managed_identity(server, key_name):
    path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2F127.0.0.1"
    status, _, body = call(server.plain_connection(), "GET", path)
    check("imds: without Metadata header is 400", status == 400, (status, body))
    status, _, body = call(server.plain_connection(), "GET", path, headers={"Metadata": "true"})
    check("imds: 200", status == 200, (status, body))
    strings = all(isinstance(body.get(f), str) and body[f].isdigit()
                  for f in ("expires_in", "expires_on", "not_before"))
    check("imds: numbers are JSON strings", strings and body.get("token_type") == "Bearer"
          and body.get("resource") == "https://127.0.0.1" and body.get("refresh_token") == "",
          body)
    slash = path.replace("/token?", "/token/?")
    status, _, body = call(server.plain_connection(), "GET", slash, headers={"Metadata": "true"})
    check("imds: the path with a trailing slash works too", status == 200
          and body.get("access_token"), (status, body))
    if status == 200:
        client = server.client(body["access_token"])
        check("imds: token works on the vault", client.get_key(key_name)[0] == 200)
        client.close()
    status, _, body = call(server.plain_connection(), "GET",
                           path.replace("127.0.0.1", "vault.azure.net"),
                           headers={"Metadata": "true"})
    check("imds: other resource is 400", status == 400, (status, body))

    path = "/msi/token?resource=https%3A%2F%2F127.0.0.1&api-version=2019-08-01"
    check("appservice: without X-IDENTITY-HEADER is 400",
          call(server.plain_connection(), "GET", path)[0] == 400)
    check("appservice: wrong X-IDENTITY-HEADER is 401",
          call(server.plain_connection(), "GET", path,
               headers={"X-IDENTITY-HEADER": "wrong"})[0] == 401)
    status, _, body = call(server.plain_connection(), "GET", path,
                           headers={"X-IDENTITY-HEADER": "test-identity-header"})
    check("appservice: 200 with the documented fields", status == 200
          and body.get("token_type") == "Bearer" and body.get("expires_on", "").isdigit()
          and body.get("resource") == "https://127.0.0.1"
          and body.get("client_id") == "managed-identity" and body.get("access_token"),
          (status, body))
    if status == 200:
        client = server.client(body["access_token"])
        check("appservice: token works on the vault", client.get_key(key_name)[0] == 200)
        client.close()
    status, _, _ = call(server.connection(), "GET", "/metadata/identity/oauth2/token?"
                        "api-version=2018-02-01&resource=https://127.0.0.1",
                        headers={"Metadata": "true"})
    check("imds: not served over HTTPS", status != 200)


def test_get_and_list(server, client):
    first = server.admin("POST", "/keys/kek1", {"kty": "RSA", "size": 2048})
    second = server.admin("POST", "/keys/kek1", {"kty": "RSA", "size": 2048,
                                                 "tags": {"purpose": "kek"}})
    kid1, kid2 = first["key"]["kid"], second["key"]["kid"]
    check("admin: create returns versioned kids", KID_RE.match(kid1) and KID_RE.match(kid2)
          and kid1 != kid2, (kid1, kid2))
    for path in ("/keys/kek1", "/keys/kek1/"):
        status, _, body = client.request("GET", path)
        check("get: %s is the latest version" % path, status == 200
              and body["key"]["kid"] == kid2, (status, body))
    status, _, body = client.get_key("kek1", kid1.rsplit("/", 1)[1])
    check("get: versioned", status == 200 and body["key"]["kid"] == kid1, body)
    key = body.get("key", {})
    attrs = body.get("attributes", {})
    check("get: RSA bundle shape", key.get("kty") == "RSA" and key.get("e") == "AQAB"
          and len(unb64url(key.get("n", ""))) == 256 and "=" not in key.get("n", "=")
          and "wrapKey" in key.get("key_ops", []), key)
    check("get: attributes", attrs.get("enabled") is True and isinstance(attrs.get("created"), int)
          and attrs.get("recoveryLevel") == "Recoverable+Purgeable"
          and attrs.get("recoverableDays") == 90, attrs)
    status, _, body = client.get_key("KEK1")
    check("get: names are case-insensitive", status == 200 and body["key"]["kid"] == kid2)
    check("get: tags", client.get_key("kek1")[2].get("tags") == {"purpose": "kek"})

    oct_key = server.admin("POST", "/keys/hsm1", {"kty": "oct-HSM", "size": 256})
    check("get: oct-HSM has no key material", set(oct_key["key"]) == {"kid", "kty", "key_ops"}
          and oct_key["key"]["kty"] == "oct-HSM", oct_key)

    created = {server.admin("POST", "/keys/paged", {"kty": "oct-HSM", "size": 128})["key"]["kid"]
               for _ in range(30)}
    status, _, page = client.request("GET", "/keys/paged/versions?maxresults=25")
    listed = [item["kid"] for item in page.get("value", [])]
    next_link = page.get("nextLink")
    check("list: first page has 25 and a nextLink", status == 200 and len(listed) == 25
          and isinstance(next_link, str) and "$skiptoken=" in next_link
          and "api-version=7.4" in next_link and next_link.startswith(server.url), page)
    check("list: nextLink spells its origin with the port, as the service does",
          re.match(r"^https://127\.0\.0\.1:%d/keys/paged/versions\?" % server.port,
                   next_link or ""), next_link)
    check("list: items have no key material and no managed",
          all(set(item) <= {"kid", "attributes", "tags"} for item in page.get("value", [])))
    pages = 1
    while next_link and pages < 10:
        status, _, page = client.request("GET", next_link[len(server.url):])
        listed += [item["kid"] for item in page.get("value", [])]
        next_link = page.get("nextLink", "absent")
        pages += 1
    check("list: nextLink followed to the end", pages == 2 and next_link is None
          and set(listed) == created and len(listed) == 30, (pages, next_link, len(listed)))
    check_error("list: maxresults 26 is 400",
                client.request("GET", "/keys/paged/versions?maxresults=26"), 400, "BadParameter")
    check_error("list: missing key is 404",
                client.request("GET", "/keys/nokey/versions"), 404, "KeyNotFound")
    return kid1, kid2


def test_name_spelling(server, client):
    """Names are case-insensitive; answers spell the key as it was created."""
    created = server.admin("POST", "/keys/MixedCase", {"kty": "oct-HSM"})["key"]["kid"]
    again = server.admin("POST", "/keys/mixedCASE", {"kty": "oct-HSM"})["key"]["kid"]
    check("spelling: a new version keeps the first spelling",
          "/keys/MixedCase/" in created and "/keys/MixedCase/" in again, (created, again))
    status, _, body = client.get_key("MIXEDCASE")
    check("spelling: get by another spelling answers the stored one", status == 200
          and body["key"]["kid"] == again, (status, body))
    status, _, body = client.wrap("mixedcase", "A256KW", os.urandom(32))
    check("spelling: wrap by another spelling answers the stored one", status == 200
          and body.get("kid") == again, (status, body))
    status, _, page = client.request("GET", "/keys/mixedcase/versions?maxresults=1")
    check("spelling: list items and nextLink spell the stored name", status == 200
          and page["value"][0]["kid"].split("/keys/")[1].startswith("MixedCase/")
          and "/keys/MixedCase/versions?" in (page.get("nextLink") or ""), page)


def test_vault_urls():
    """kid without :443, nextLink with it (REST spec example GetKeyVersions)."""
    import vault_server
    check("urls: port 443 leaves kids without a port and gives nextLink :443",
          vault_server.vault_urls("myvault.vault.localhost", 443)
          == ("https://myvault.vault.localhost", "https://myvault.vault.localhost:443"))
    check("urls: another port is in both",
          vault_server.vault_urls(None, 8443)
          == ("https://127.0.0.1:8443", "https://127.0.0.1:8443"))


def test_named_vault(named):
    """--vault-host: a vault with a DNS name under a parent domain, as the service has."""
    host = "localvault.vault.localhost"
    check("named: ready.json names the vault and its parent resource",
          named.url == "https://%s:%d" % (host, named.port) and named.host == host
          and named.resource == "https://vault.localhost"
          and named.ready["authority"] == "https://127.0.0.1:%d" % named.port, named.ready)
    status, _, _ = call(named.connection(host), "GET", "/_admin/stats")
    check("named: the certificate names the vault host", status == 200)
    status, headers, _ = call(named.connection(host), "GET", "/keys/k1?api-version=2025-07-01")
    expected = 'Bearer authorization="https://127.0.0.1:%d/%s", resource="https://vault.localhost"' % (
        named.port, named.tenant)
    check("named: challenge resource is a strict parent domain of the vault host",
          status == 401 and headers.get("www-authenticate") == expected, headers)
    for _ in range(3):
        kid = named.admin("POST", "/keys/k1", {"kty": "RSA"})["key"]["kid"]
    check("named: kids are under the vault's name",
          kid.startswith("https://%s:%d/keys/k1/" % (host, named.port)), kid)
    client = named.client()
    status, _, body = client.get_key("k1")
    check("named: a token for the parent resource works", status == 200
          and body["key"]["kid"] == kid, (status, body))
    status, _, page = client.request("GET", "/keys/k1/versions?maxresults=2")
    check("named: nextLink is on the vault's name with its port",
          (page.get("nextLink") or "").startswith("https://%s:%d/keys/k1/versions?"
                                                   % (host, named.port)), page)
    client.close()


def test_wrap_unwrap(server, client, kid1, kid2):
    secret = os.urandom(32)
    for alg in ("RSA-OAEP-256", "RSA-OAEP", "RSA1_5"):
        status, _, wrapped = client.wrap(key_path(kid2), alg, secret)
        check("wrap: %s" % alg, status == 200 and wrapped.get("kid") == kid2
              and len(unb64url(wrapped.get("value", ""))) == 256, (status, wrapped))
        status, _, plain = client.unwrap(key_path(kid2), alg, unb64url(wrapped["value"]))
        check("unwrap: %s round trip" % alg, status == 200 and plain.get("kid") == kid2
              and unb64url(plain.get("value", "")) == secret, (status, plain))

    status, _, wrapped = client.wrap("kek1", "RSA-OAEP-256", secret)
    check("wrap: unversioned path answers the versioned kid", wrapped.get("kid") == kid2, wrapped)
    status, _, wrapped = client.wrap(key_path(kid1), "RSA-OAEP-256", secret)
    check("wrap: an older version", wrapped.get("kid") == kid1, wrapped)
    status, _, plain = client.unwrap(key_path(kid1), "RSA-OAEP-256", unb64url(wrapped["value"]))
    check("unwrap: an older version", status == 200 and unb64url(plain["value"]) == secret)
    check_error("unwrap: under the wrong version is 400",
                client.unwrap(key_path(kid2), "RSA-OAEP-256", unb64url(wrapped["value"])),
                400, "BadParameter")

    # Wrap locally with the public key from Get Key, unwrap through the server.
    bundle = client.get_key(key_path(kid2))[2]["key"]
    public = rsa.RSAPublicNumbers(int.from_bytes(unb64url(bundle["e"]), "big"),
                                  int.from_bytes(unb64url(bundle["n"]), "big")).public_key()
    oaep256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                           label=None)
    local = public.encrypt(secret, oaep256)
    status, _, plain = client.unwrap(key_path(kid2), "RSA-OAEP-256", local)
    check("unwrap: a value wrapped locally with n,e", status == 200
          and unb64url(plain["value"]) == secret, (status, plain))
    padded = {"alg": "RSA-OAEP-256",
              "value": __import__("base64").urlsafe_b64encode(local).decode()}
    status, _, plain = client.request("POST", "/keys/%s/unwrapkey" % key_path(kid2), padded)
    check("unwrap: padded base64url accepted", status == 200
          and unb64url(plain["value"]) == secret)
    status, _, plain = client.request("POST", "/keys/kek1//unwrapkey",
                                      {"alg": "RSA-OAEP-256", "value": b64url(local)})
    check("unwrap: empty version segment means latest", status == 200)

    status, _, wrapped = client.wrap("hsm1", "A256KW", secret)
    check("wrap: A256KW is input + 8 bytes", status == 200
          and len(unb64url(wrapped["value"])) == 40, (status, wrapped))
    status, _, plain = client.unwrap("hsm1", "A256KW", unb64url(wrapped["value"]))
    check("unwrap: A256KW round trip", status == 200 and unb64url(plain["value"]) == secret)
    check_error("wrap: A128KW on a 256-bit key is 400",
                client.wrap("hsm1", "A128KW", secret), 400, "BadParameter")
    check_error("wrap: A256KW with 12 bytes is 400",
                client.wrap("hsm1", "A256KW", secret[:12]), 400, "BadParameter")
    check_error("wrap: A256KW on an RSA key is 400",
                client.wrap("kek1", "A256KW", secret), 400, "BadParameter")
    check_error("wrap: RSA-OAEP on an oct key is 400",
                client.wrap("hsm1", "RSA-OAEP", secret), 400, "BadParameter")
    check_error("wrap: unknown alg is 400", client.wrap("kek1", "RSA-OAEP-512", secret),
                400, "BadParameter")
    check_error("wrap: 191 bytes under RSA-2048 OAEP-256 is 400",
                client.wrap("kek1", "RSA-OAEP-256", os.urandom(191)), 400, "BadParameter")
    check_error("unwrap: garbage is 400 with a message",
                client.unwrap("kek1", "RSA-OAEP-256", os.urandom(256)), 400, "BadParameter",
                message=r"\S")
    check_error("unwrap: A256KW garbage is 400",
                client.unwrap("hsm1", "A256KW", os.urandom(40)), 400, "BadParameter")
    check_error("wrap: value not base64url is 400",
                client.request("POST", "/keys/kek1/wrapkey", {"alg": "RSA-OAEP", "value": "a+/b"}),
                400, "BadParameter")
    check_error("wrap: missing alg is 400",
                client.request("POST", "/keys/kek1/wrapkey", {"value": "AAAA"}), 400, "BadParameter")
    check_error("wrap: not JSON is 400",
                client.request("POST", "/keys/kek1/wrapkey", "{nope",
                               {"Content-Type": "application/json"}), 400, "BadParameter")

    # A body sent after "Expect: 100-continue", and a chunked one.
    status, _, plain = client.request("POST", "/keys/%s/unwrapkey" % key_path(kid2),
                                      {"alg": "RSA-OAEP-256", "value": b64url(local)},
                                      {"Expect": "100-continue"})
    check("http: Expect 100-continue", status == 200 and unb64url(plain["value"]) == secret)
    conn = server.connection()
    body = json.dumps({"alg": "RSA-OAEP-256", "value": b64url(local)}).encode()
    conn.request("POST", "/keys/%s/unwrapkey?%s" % (key_path(kid2), API), body=iter([body]),
                 headers={"Authorization": "Bearer " + client.token,
                          "Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    check("http: chunked request body", response.status == 200
          and unb64url(json.loads(response.read())["value"]) == secret)
    conn.close()
    return secret


def test_not_found(client, kid2):
    answer = client.get_key("nope")
    check_error("404: missing key is KeyNotFound", answer, 404, "KeyNotFound",
                message=r"^A key with \(name/id\) nope was not found in this key vault\.")
    check("404: KeyNotFound has no innererror", "innererror" not in answer[2]["error"])
    check_error("404: missing version", client.get_key("kek1", "0" * 32), 404, "KeyNotFound",
                message=r"^A key with \(name/id\) kek1/0{32} was not found")
    check_error("404: unwrap with a missing key",
                client.unwrap("nope", "RSA-OAEP-256", b"x" * 256), 404, "KeyNotFound")


def test_attributes(server, client, kid2):
    version = kid2.rsplit("/", 1)[1]
    attributes = "/keys/kek1/%s/attributes" % version
    secret = os.urandom(32)
    wrapped = unb64url(client.wrap("kek1", "RSA-OAEP-256", secret)[2]["value"])

    server.admin("POST", attributes, {"enabled": False})
    check_error("disabled: unwrap is 403 KeyDisabled",
                client.unwrap("kek1", "RSA-OAEP-256", wrapped), 403, "Forbidden", "KeyDisabled",
                message="^Operation unwrapKey is not allowed on a disabled key")
    check("disabled: wrap still allowed", client.wrap("kek1", "RSA-OAEP-256", secret)[0] == 200)
    check("disabled: get still allowed and shows it",
          client.get_key("kek1")[2]["attributes"]["enabled"] is False)
    server.admin("POST", attributes, {"enabled": True})

    server.admin("POST", attributes, {"exp": int(time.time()) - 10})
    check_error("expired: wrap is 403", client.wrap("kek1", "RSA-OAEP-256", secret),
                403, "Forbidden")
    status, _, plain = client.unwrap("kek1", "RSA-OAEP-256", wrapped)
    check("expired: unwrap still works", status == 200 and unb64url(plain["value"]) == secret)
    server.admin("POST", attributes, {"exp": None, "nbf": int(time.time()) + 3600})
    check_error("not yet valid: wrap is 403", client.wrap("kek1", "RSA-OAEP-256", secret),
                403, "Forbidden")
    check("not yet valid: unwrap still works",
          client.unwrap("kek1", "RSA-OAEP-256", wrapped)[0] == 200)
    server.admin("POST", attributes, {"nbf": None})
    check("window restored: wrap works", client.wrap("kek1", "RSA-OAEP-256", secret)[0] == 200)

    server.admin("POST", attributes, {"key_ops": ["wrapKey"]})
    check_error("key_ops: unwrap missing is 403 KeyOperationForbidden",
                client.unwrap("kek1", "RSA-OAEP-256", wrapped), 403, "Forbidden",
                "KeyOperationForbidden", message="^Operation unwrapKey is not permitted")
    server.admin("POST", attributes, {"key_ops": ["unwrapKey"]})
    check_error("key_ops: wrap missing is 403 KeyOperationForbidden",
                client.wrap("kek1", "RSA-OAEP-256", secret), 403, "Forbidden",
                "KeyOperationForbidden")
    server.admin("POST", attributes, {"key_ops": ["wrapKey", "unwrapKey", "encrypt", "decrypt"]})

    # Update Key (PATCH) needs the "update" permission, which is not a default.
    patch = {"attributes": {"enabled": False}}
    check_error("update: without the permission is 403 ForbiddenByPolicy",
                client.request("PATCH", "/keys/kek1/" + version, patch), 403, "Forbidden",
                "ForbiddenByPolicy", message="does not have keys update permission")
    server.admin("POST", "/access", {"client": "renc-test", "permissions":
                                     ["get", "list", "wrapKey", "unwrapKey", "update"]})
    status, _, body = client.request("PATCH", "/keys/kek1/" + version, patch)
    check("update: PATCH disables the key", status == 200
          and body["attributes"]["enabled"] is False and body["key"]["kid"] == kid2, body)
    check_error("update: then unwrap is KeyDisabled",
                client.unwrap("kek1", "RSA-OAEP-256", wrapped), 403, "Forbidden", "KeyDisabled")
    status, _, body = client.request("PATCH", "/keys/kek1/" + version,
                                     {"attributes": {"enabled": True}, "key_ops": ["unwrapKey"]})
    check("update: PATCH enables and sets key_ops", status == 200
          and body["key"]["key_ops"] == ["unwrapKey"], body)
    check_error("update: bad attribute is 400",
                client.request("PATCH", "/keys/kek1/" + version,
                               {"attributes": {"enabled": "yes"}}), 400, "BadParameter")
    server.admin("POST", attributes, {"key_ops": ["wrapKey", "unwrapKey"]})

    server.admin("POST", "/access", {"client": "renc-test", "permissions": []})
    check_error("access: withdrawn is 403 ForbiddenByPolicy",
                client.unwrap("kek1", "RSA-OAEP-256", wrapped), 403, "Forbidden",
                "ForbiddenByPolicy",
                message=r"^The user, group or application 'appid=renc-test;oid=[0-9a-f-]{36};"
                        r"iss=https://sts\.windows\.net/%s/' does not have keys unwrapKey "
                        r"permission on key vault '[^;']+;location=[^']+'" % server.tenant)
    check_error("access: withdrawn applies to missing keys too",
                client.get_key("nope"), 403, "Forbidden", "ForbiddenByPolicy")
    server.admin("POST", "/access", {"client": "renc-test",
                                     "permissions": ["get", "unwrapKey"]})
    check_error("access: without wrapKey", client.wrap("kek1", "RSA-OAEP-256", secret),
                403, "Forbidden", "ForbiddenByPolicy", message="keys wrapKey permission")
    check("access: unwrapKey still granted",
          client.unwrap("kek1", "RSA-OAEP-256", wrapped)[0] == 200)
    server.admin("POST", "/access", {"client": "renc-test",
                                     "permissions": ["get", "list", "wrapKey", "unwrapKey"]})
    check("access: restored", client.wrap("kek1", "RSA-OAEP-256", secret)[0] == 200)

    # Network rules: checked after the token and before the access policy;
    # the 403's inner code says which rule (the service's own messages).
    server.admin("POST", "/network", {"deny": "firewall"})
    check_error("network: firewall is 403 ForbiddenByFirewall",
                client.wrap("kek1", "RSA-OAEP-256", secret), 403, "Forbidden",
                "ForbiddenByFirewall",
                message=r"^Client address is not authorized and caller is not a trusted service\."
                        r"\r\nClient address: [0-9.]+\r\nCaller: appid=renc-test;")
    server.admin("POST", "/access", {"client": "renc-test", "permissions": []})
    check_error("network: the firewall answers before the access policy",
                client.get_key("kek1"), 403, "Forbidden", "ForbiddenByFirewall")
    server.admin("POST", "/access", {"client": "renc-test",
                                     "permissions": ["get", "list", "wrapKey", "unwrapKey"]})
    server.admin("POST", "/network", {"deny": "private-link"})
    check_error("network: private link is 403 ForbiddenByConnection",
                client.get_key("kek1"), 403, "Forbidden", "ForbiddenByConnection",
                message=r"^Public network access is disabled")
    server.admin("POST", "/network", {"deny": None})
    check("network: cleared", client.wrap("kek1", "RSA-OAEP-256", secret)[0] == 200)

    # Triggers: an admin call run when the Nth successful operation of a
    # kind has been answered (counted from the arming), once.
    server.admin("POST", "/triggers", {"after": "wrapkey", "count": 2, "then": {
        "path": "/access", "body": {"client": "renc-test", "permissions": ["get"]}}})
    check("trigger: the first wrap is answered", client.wrap("kek1", "RSA-OAEP-256", secret)[0] == 200)
    check("trigger: the second wrap (the trigger's) is answered",
          client.wrap("kek1", "RSA-OAEP-256", secret)[0] == 200)
    check_error("trigger: access is withdrawn after the second wrap",
                client.wrap("kek1", "RSA-OAEP-256", secret), 403, "Forbidden", "ForbiddenByPolicy")
    check("trigger: fired once and disarmed",
          server.admin("GET", "/triggers") == {"armed": []})
    server.admin("POST", "/access", {"client": "renc-test",
                                     "permissions": ["get", "list", "wrapKey", "unwrapKey"]})


def test_throttle(server, client):
    server.admin("POST", "/keys/thr", {"kty": "RSA", "size": 2048})
    secret = os.urandom(32)
    wrapped = unb64url(client.wrap("thr", "RSA-OAEP-256", secret)[2]["value"])
    server.admin("POST", "/stats/reset")
    server.admin("POST", "/throttle", {"limit": 5, "window": 5, "retry_after": 2})
    answers = [client.unwrap("thr", "RSA-OAEP-256", wrapped) for _ in range(4)]
    answers += [client.get_key("thr") for _ in range(4)]
    statuses = [a[0] for a in answers]
    check("throttle: limit 5 admits 5 of 8", statuses == [200] * 5 + [429] * 3, statuses)
    status, headers, body = answers[-1]
    check("throttle: 429 body", body == {"error": {
        "code": "Throttled", "message": "Request was not processed because too many requests "
        "were received. Reason: VaultRequestTypeLimitReached"}}, body)
    check("throttle: Retry-After when configured", headers.get("retry-after") == "2", headers)
    check("throttle: other key classes have their own budget",
          client.wrap("hsm1", "A256KW", secret)[0] == 200)
    server.admin("POST", "/throttle", {"limit": 5, "window": 5, "retry_after": None})
    for _ in range(5):
        client.get_key("thr")
    status, headers, _ = client.get_key("thr")
    check("throttle: no Retry-After when not configured",
          status == 429 and "retry-after" not in headers, (status, headers))
    stats = server.admin("GET", "/stats")
    check("throttle: stats count 429s", stats["throttled"] >= 4, stats)

    # Hammer for 2.5 windows from two connections; the log must never admit
    # more than the limit in any window, yet must admit again as time rolls.
    server.admin("POST", "/throttle", {"limit": 20, "window": 1})
    server.admin("POST", "/stats/reset")
    counts = {200: 0, 429: 0, "other": 0}
    lock = threading.Lock()

    def hammer():
        c = server.client(client.token)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            status = c.get_key("thr")[0]
            with lock:
                counts[status if status in counts else "other"] += 1
        c.close()

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = server.admin("GET", "/stats")
    check("throttle: max_in_window never exceeds the limit",
          0 < stats["max_in_window"] <= 20, stats["max_in_window"])
    check("throttle: the window slides (40+ admitted in 2.5 s)",
          counts[200] >= 40 and counts[429] > 0 and counts["other"] == 0, counts)

    # Refused requests must not count: after a window full of 429s, the next
    # request once the admitted ones have aged out is admitted.
    server.admin("POST", "/throttle", {"limit": 3, "window": 1})
    first = time.monotonic()
    admitted = [client.get_key("thr")[0] for _ in range(3)]
    refused = 0
    while time.monotonic() - first < 0.9:
        refused += client.get_key("thr")[0] == 429
    time.sleep(max(0.0, first + 1.3 - time.monotonic()))
    check("throttle: failed 429s do not consume budget", admitted == [200] * 3 and refused > 5
          and client.get_key("thr")[0] == 200, (admitted, refused))
    server.admin("POST", "/throttle", {"limit": 0})
    statuses = {client.get_key("thr")[0] for _ in range(30)}
    check("throttle: off again", statuses == {200}, statuses)


def test_faults(server, client):
    server.admin("POST", "/stats/reset")
    server.admin("POST", "/faults", {"status": 503, "count": 2})
    answers = [client.get_key("kek1") for _ in range(3)]
    check("faults: 503 twice, then 200", [a[0] for a in answers] == [503, 503, 200],
          [a[0] for a in answers])
    check("faults: 503 body is a key vault error",
          error_code(answers[0][2])[0] == "ServiceUnavailable", answers[0][2])
    server.admin("POST", "/faults", {"status": 429, "count": 1, "retry_after": 1})
    check_error("faults: an injected 429 is the service's Throttled with Retry-After",
                client.get_key("kek1"), 429, "Throttled",
                message="^Request was not processed because too many requests were received")

    server.admin("POST", "/faults", {"drop": 1})
    conn = server.connection()
    try:
        call(conn, "GET", "/keys/kek1?" + API, headers={"Authorization": "Bearer " + client.token})
        check("faults: drop closes without an answer", False, "got an answer")
    except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError, OSError):
        check("faults: drop closes without an answer", True)
    check("faults: next request after a drop works", client.get_key("kek1")[0] == 200)

    server.admin("POST", "/faults", {"delay_ms": 300, "count": 1})
    started = time.monotonic()
    client.get_key("kek1")
    slow = time.monotonic() - started
    started = time.monotonic()
    client.get_key("kek1")
    fast = time.monotonic() - started
    check("faults: delay applies to the next request only", slow >= 0.3 and fast < 0.3,
          (slow, fast))

    server.admin("POST", "/faults", {"every": 3, "status": 500})
    statuses = [client.get_key("kek1")[0] for _ in range(6)]
    check("faults: every 3rd fails", statuses == [200, 200, 500, 200, 200, 500], statuses)
    server.admin("POST", "/faults", {"clear": True})
    statuses = {client.get_key("kek1")[0] for _ in range(6)}
    check("faults: cleared", statuses == {200}, statuses)

    server.admin("POST", "/faults", {"status": 500, "count": 1, "on": "token"})
    check("faults: on token leaves the vault alone", client.get_key("kek1")[0] == 200)
    check("faults: on token fails the token endpoint", server.token()[0] == 500)
    check("faults: token endpoint recovers", server.token()[0] == 200)
    stats = server.admin("GET", "/stats")
    check("faults: stats", stats["faults"] == 7 and stats["delayed"] == 1, stats)


def test_keepalive(server, client):
    server.admin("POST", "/stats/reset")
    reused = server.client(client.token)
    statuses = [reused.get_key("kek1")[0] for _ in range(10)]
    sockets = {id(reused.conn.sock)}
    reused.close()
    stats = server.admin("GET", "/stats")
    check("keep-alive: 10 requests on one connection", statuses == [200] * 10
          and len(sockets) == 1 and stats["connections"] == 1 and stats["get"] == 10, stats)


def test_revoke(server, client):
    server.admin("POST", "/tokens/revoke")
    status, headers, _ = client.get_key("kek1")
    check("revoke: old token gets the 401 challenge", status == 401
          and "www-authenticate" in headers)
    client.token = server.access_token()
    check("revoke: a new token works", client.get_key("kek1")[0] == 200)


def test_token_expiry(short):
    short.admin("POST", "/keys/k", {"kty": "oct-HSM"})
    client = short.client()
    check("expiry: fresh token works", client.get_key("k")[0] == 200)
    check("expiry: expires_in is the lifetime", short.token()[1].get("expires_in") == 2)
    time.sleep(2.2)
    status, headers, body = client.get_key("k")
    check("expiry: expired token gets the 401 challenge", status == 401
          and headers.get("www-authenticate", "").startswith('Bearer authorization="')
          and error_code(body)[0] == "Unauthorized", (status, body))
    client.close()


def test_log(server, tokens):
    with open(server.log_path) as f:
        log = f.read()
    lines = log.splitlines()
    check("log: one line per request", len(lines) > 100, len(lines))
    check("log: status on each line", all(re.search(r" (\d{3}|dropped) [\d.]+ms$", line)
                                          for line in lines), lines[:3])
    leaked = [t for t in tokens + [server.secret] if t and t in log]
    check("log: no token or secret", not leaked)
    check("log: query values masked", "$skiptoken=*" in log and "skiptoken=ey" not in log)


def test_sigterm(server):
    ready = os.path.join(server.dir, "ready.json")
    code = server.stop()
    check("sigterm: clean exit", code == 0, code)
    check("sigterm: ready.json removed", not os.path.exists(ready))


# ---- client assertions: certificate and workload identity ------------------

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def make_client_cert(directory):
    """(key, certificate, path of the certificate's PEM) for --client-cert."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "selftest client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = os.path.join(directory, "client.crt")
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def sign_assertion(key, cert, header_extra, claims, alg="PS256"):
    import hashlib
    from cryptography.hazmat.primitives import serialization
    der = cert.public_bytes(serialization.Encoding.DER)
    header = {"alg": alg, "typ": "JWT"}
    header.update({k: (b64url(getattr(hashlib, v)(der).digest()) if v in ("sha1", "sha256")
                       else v) for k, v in header_extra.items()})
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if alg == "PS256"
           else padding.PKCS1v15())
    return signing_input + "." + b64url(key.sign(signing_input.encode(), pad, hashes.SHA256()))


def assertion_token(server, assertion, client_id="renc-test", path=None):
    import urllib.parse
    form = urllib.parse.urlencode({
        "client_id": client_id, "grant_type": "client_credentials",
        "scope": "https://127.0.0.1/.default", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion})
    return call(server.connection(), "POST", path or "/%s/oauth2/v2.0/token" % server.tenant,
                form, {"Content-Type": "application/x-www-form-urlencoded"})


def check_oauth(name, answer, status, code):
    got_status, _, body = answer
    ok = (got_status == status and isinstance(body, dict)
          and body.get("error_codes") == [code]
          and body.get("error_description", "").startswith("AADSTS%d:" % code))
    check(name, ok, (got_status, body))


def test_certificate_assertion(server, key, cert):
    aud = "%s/%s/oauth2/v2.0/token" % (server.url, server.tenant)

    def claims(**changes):
        now = int(time.time())
        c = {"aud": aud, "iss": "renc-test", "sub": "renc-test", "jti": os.urandom(8).hex(),
             "nbf": now, "iat": now, "exp": now + 600}
        c.update(changes)
        return c

    status, _, body = assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "sha256"},
                                                             claims()))
    check("assertion: PS256 with x5t#S256 gives a token", status == 200
          and body.get("token_type") == "Bearer", (status, body))
    check("assertion: the token works on the vault",
          server.client(token=body.get("access_token")).get_key("k")[0] in (200, 404))
    status, _, body = assertion_token(server, sign_assertion(key, cert, {"x5t": "sha1"}, claims(),
                                                             alg="RS256"))
    check("assertion: RS256 with x5t gives a token", status == 200, (status, body))
    fixed = claims()
    assertion = sign_assertion(key, cert, {"x5t#S256": "sha256"}, fixed)
    assertion_token(server, assertion)
    check_oauth("assertion: a reused jti is refused", assertion_token(server, assertion), 401,
                50013)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    check_oauth("assertion: a bad signature is AADSTS700027",
                assertion_token(server, sign_assertion(other, cert, {"x5t#S256": "sha256"},
                                                       claims())), 401, 700027)
    check_oauth("assertion: a thumbprint not registered is AADSTS700027",
                assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "AAAA"},
                                                       claims())), 401, 700027)
    check_oauth("assertion: another aud is refused",
                assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "sha256"},
                                                       claims(aud=server.url + "/"))), 401, 50013)
    check_oauth("assertion: iss other than the client is refused",
                assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "sha256"},
                                                       claims(iss="someone"))), 401, 50013)
    now = int(time.time())
    check_oauth("assertion: expired is AADSTS700024",
                assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "sha256"},
                                                       claims(exp=now - 3600))), 401, 700024)
    check_oauth("assertion: exp too far ahead is AADSTS700024",
                assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "sha256"},
                                                       claims(exp=now + 86400))), 401, 700024)
    check_oauth("assertion: nbf in the future is AADSTS700024",
                assertion_token(server, sign_assertion(key, cert, {"x5t#S256": "sha256"},
                                                       claims(nbf=now + 3600))), 401, 700024)
    status, _, body = assertion_token(server, "not.a.jwt")
    check("assertion: a malformed assertion is 400", status == 400, (status, body))


def test_federated_assertion(server):
    minted = server.admin("POST", "/federated/token", {"client": "renc-test"})
    status, _, body = assertion_token(server, minted["token"])
    check("federated: a minted service-account token gives a token", status == 200, (status, body))
    check_oauth("federated: another subject is AADSTS700213",
                assertion_token(server, server.admin("POST", "/federated/token", {
                    "client": "renc-test", "subject": "system:serviceaccount:x:y"})["token"]),
                400, 700213)
    check_oauth("federated: another audience is AADSTS700212",
                assertion_token(server, server.admin("POST", "/federated/token", {
                    "client": "renc-test", "audience": "api://other"})["token"]), 400, 700212)
    head, claims, sig = minted["token"].split(".")
    forged = json.loads(unb64url(claims))
    forged["sub"] = "system:serviceaccount:prod:other"
    check_oauth("federated: a changed claim fails the signature (AADSTS700027)",
                assertion_token(server, "%s.%s.%s" % (head, b64url(json.dumps(forged).encode()),
                                                      sig)), 401, 700027)
    server.admin("POST", "/federated/revoke", {"jti": minted["jti"]})
    check_oauth("federated: a revoked token fails as an expired one (AADSTS700024)",
                assertion_token(server, minted["token"]), 401, 700024)
    grants = server.admin("GET", "/grants")
    check("federated: grants counted per kind", grants.get("federated") == 1
          and grants.get("federated:renc-test") == 1 and grants.get("certificate", 0) >= 2,
          grants)


def test_token_path_not_folded(server):
    status, _, body = call(server.connection(), "POST", "//%s/oauth2/v2.0/token" % server.tenant,
                           "grant_type=client_credentials",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    check("token: '//TENANT/oauth2/v2.0/token' is not the token endpoint", status == 404, (status, body))
    with open(server.log_path) as f:
        check("log: the '//' path as sent", " POST //%s/oauth2/v2.0/token 404 " % server.tenant
              in f.read())


# --------------------------------------------------------------------------

def main():
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="renc-vault-selftest.") as tmp:
        try:
            server = ServerProcess(os.path.join(tmp, "main"),
                                   "--identity-header", "test-identity-header")
            short = ServerProcess(os.path.join(tmp, "short"), "--token-lifetime", "2")
            named = ServerProcess(os.path.join(tmp, "named"),
                                  "--vault-host", "localvault.vault.localhost")
            cert_key, cert = make_client_cert(os.path.join(tmp, "creds"))
            creds = ServerProcess(os.path.join(tmp, "creds"), "--client-cert",
                                  "renc-test=" + os.path.join(tmp, "creds", "client.crt"),
                                  "--federated", "renc-test=system:serviceaccount:prod:app")
        except RuntimeError as error:
            print("FAIL could not start vault_server.py: %s" % error)
            return 2
        try:
            test_tls(server)
            test_challenge_and_api_version(server)
            test_client_credentials(server)
            test_openid_configuration(server)
            client = server.client()
            kid1, kid2 = test_get_and_list(server, client)
            test_name_spelling(server, client)
            test_vault_urls()
            test_named_vault(named)
            test_managed_identity(server, "kek1")
            test_wrap_unwrap(server, client, kid1, kid2)
            test_not_found(client, kid2)
            test_attributes(server, client, kid2)
            test_throttle(server, client)
            test_faults(server, client)
            test_keepalive(server, client)
            old_token = client.token
            test_revoke(server, client)
            test_token_expiry(short)
            test_certificate_assertion(creds, cert_key, cert)
            test_federated_assertion(creds)
            test_token_path_not_folded(creds)
            client.close()
            test_log(server, [old_token, client.token])
            test_sigterm(server)
        except Exception as error:  # an unexpected exception is a failure, not a crash
            import traceback
            traceback.print_exc()
            check("no unexpected exception", False, repr(error))
        finally:
            for proc in (server, short, named, creds):
                if proc.proc.poll() is None:
                    proc.stop()
            output = server.output() + short.output() + named.output() + creds.output()
            check("server wrote nothing to stderr", output.strip() == "", output[-2000:])
    print("vault selftest (%s, cryptography %s): %d passed, %d failed in %.1f s"
          % (sys.executable, __import__("cryptography").__version__, len(PASSED), len(FAILED),
             time.monotonic() - started))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
