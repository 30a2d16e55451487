#!/usr/bin/env python3
"""make_cert.py DIR PASSWORD_FILE — a client certificate for the tests:
DIR/app.crt (the certificate, registered at the double), DIR/app.pem (the
certificate and its RSA key, as AZURE_CLIENT_CERTIFICATE_PATH takes it),
DIR/app.p12 (PKCS#12 with the password of PASSWORD_FILE) and DIR/key.b64
(one base64 line of the private key, for the leak checks)."""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    os.close(fd)


def main(directory, password_file):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reencrypt test client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with open(password_file, "rb") as f:
        password = f.read().strip()
    write(os.path.join(directory, "app.crt"), cert_pem)
    write(os.path.join(directory, "app.pem"), cert_pem + key_pem)
    write(os.path.join(directory, "app.p12"), pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(password)))
    write(os.path.join(directory, "key.b64"), key_pem.splitlines()[5] + b"\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
