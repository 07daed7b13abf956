"""DNS for tests: records the test writes, nothing from the network.

Every test runs with an empty one installed (autouse), so a sender check never leaves the
machine; `dns` is that instance, for a test that publishes records (a DKIM key, an SPF policy).
`dkim_key(domain, selector)` makes an RSA key pair the way a mail server's admin would, publishes
the public half and returns a signer for messages.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mail import auth


@dataclass
class FakeDNS:
    records: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False  # every lookup times out, as when the resolver is unreachable

    def __call__(self, name: str, rdtype: str) -> list[Any]:
        key = (name.rstrip(".").lower(), rdtype)
        self.asked.append(key)
        if self.down:
            raise auth.DNSFailure(f"DNS {rdtype} {name}: LifetimeTimeout")
        return list(self.records.get(key, []))

    def txt(self, name: str, value: str) -> None:
        self.records.setdefault((name.lower(), "TXT"), []).append(value.encode())

    def dkim_key(self, domain: str, selector: str = "s1") -> Callable[[bytes], bytes]:
        """Publish a fresh RSA key at <selector>._domainkey.<domain>; returns sign(raw) -> signed raw."""
        import dkim
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.txt(f"{selector}._domainkey.{domain}", "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode())

        def sign(raw: bytes) -> bytes:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # what a mail server signs
            return dkim.sign(raw, selector.encode(), domain.encode(), private,
                             include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + raw

        return sign


@pytest.fixture(autouse=True)
def dns() -> Iterator[FakeDNS]:
    fake = FakeDNS()
    previous = auth.install_dns(fake)
    yield fake
    auth.install_dns(previous)
