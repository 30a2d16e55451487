#!/usr/bin/env python3
"""A stand-in for the Azure CLI's `az account get-access-token` (tests only).

It gets a token from the key vault test double with the client secret, as
`az login --service-principal` would have, and prints it the way the CLI
does.  Settings from the environment (the test exports them):
  AZ_STUB_MODE        new (expiresOn and expires_on), old (expiresOn only),
                      logged-out ("Please run 'az login'", exit 1),
                      garbage (not JSON, exit 0)
  AZ_STUB_LOG         every argument vector is appended here
  AZ_STUB_URL, AZ_STUB_CA, AZ_STUB_CLIENT, AZ_STUB_SECRET_FILE
"""
import json
import os
import ssl
import sys
import time
import urllib.parse
import urllib.request


def main(args):
    with open(os.environ["AZ_STUB_LOG"], "a") as log:
        log.write(" ".join(args) + "\n")
    mode = os.environ.get("AZ_STUB_MODE", "new")
    if mode == "logged-out":
        sys.stderr.write("ERROR: Please run 'az login' to setup account.\n")
        return 1
    if mode == "garbage":
        print("WARNING: this is not JSON")
        return 0
    if args[:2] != ["account", "get-access-token"] or "--resource" not in args:
        sys.stderr.write("az stub: unexpected arguments %r\n" % args)
        return 2
    resource = args[args.index("--resource") + 1]
    tenant = args[args.index("--tenant") + 1] if "--tenant" in args else "organizations"
    with open(os.environ["AZ_STUB_SECRET_FILE"]) as f:
        secret = f.read().strip()
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": os.environ["AZ_STUB_CLIENT"],
        "client_secret": secret, "scope": resource + "/.default"}).encode()
    request = urllib.request.Request(
        "%s/%s/oauth2/v2.0/token" % (os.environ["AZ_STUB_URL"], tenant), form,
        {"Content-Type": "application/x-www-form-urlencoded"})
    context = ssl.create_default_context(cafile=os.environ["AZ_STUB_CA"])
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        token = json.load(answer)
    expires = int(time.time()) + int(token["expires_in"])
    out = {"accessToken": token["access_token"],
           "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.localtime(expires)),
           "subscription": "00000000-0000-0000-0000-000000000000", "tenant": tenant,
           "tokenType": "Bearer"}
    if mode == "new":
        out["expires_on"] = expires
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
