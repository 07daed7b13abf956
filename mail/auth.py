"""Was this message really sent by its From? DESIGN.md "Inbound sender authentication".

`authenticate(raw, *, from_address, mail_from="", client_ip=None, helo=None, trusted_authserv_ids=(),
dns=None) -> SenderCheck(authenticated, detail)`. The From address is authenticated, as DMARC
would have it (RFC 7489, relaxed alignment: the same organisational domain), by the first of:

1. a trusted receiver's verdict: the topmost `Authentication-Results` header (RFC 8601, parsed
   with `authres`) whose authserv-id is trusted (CRM_INBOUND_TRUSTED_AUTHSERV_IDS; none by
   default) says dmarc=pass for the From domain, or dkim=pass / spf=pass for an aligned domain.
   Anyone can write such a header, so one from another authserv-id is ignored, and only the
   topmost of a trusted one counts (a receiver adds its own above what the message brought, and
   RFC 8601 section 5 has it remove copies of its own id that arrived from outside);
2. a `DKIM-Signature` verified here (`dkimpy`) whose d= is aligned with the From domain;
3. SPF checked here (`pyspf`) for the connecting client's address, passing for an aligned MAIL
   FROM (or HELO) domain. Only our SMTP listener knows that address; webhooks rely on 1 and 2.

Everything else is unauthenticated, with the reason in `detail` (what was missing or failed),
which is what the rep is shown; `temporary` when only a DNS failure stood in the way.

DNS goes through one function, `Lookup(name, rdtype) -> answers` (TXT: list of bytes,
A/AAAA: list of str, MX: list of (preference, host), PTR: list of str),
raising `DNSFailure` for a temporary error: `dns=` where given, else the installed one
(`install_dns`; `dns_lookup`, dnspython with short timeouts, until something else is installed).
The tests install records of their own, so nothing here needs a network in a test.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from functools import lru_cache
from typing import Any

import authres
import dkim
import spf

from mail.types import SenderCheck

log = logging.getLogger("crm.inbox.auth")

Lookup = Callable[[str, str], list[Any]]
DNS_TIMEOUT_SECONDS = 3.0
MAX_SIGNATURES = 5  # a message with more DKIM signatures than this is not worth the lookups


class DNSFailure(Exception):
    """A temporary DNS error (timeout, no server): the check is inconclusive, not failed."""


def dns_lookup(name: str, rdtype: str) -> list[Any]:
    """Real DNS through dnspython, with a short deadline so a dead resolver never stalls the inbox."""
    import dns.exception
    import dns.resolver

    try:
        answers = dns.resolver.resolve(name, rdtype, lifetime=DNS_TIMEOUT_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise DNSFailure(f"DNS {rdtype} {name}: {type(exc).__name__}") from exc
    if rdtype in ("TXT", "SPF"):
        return [b"".join(r.strings) for r in answers]
    if rdtype == "MX":
        return [(r.preference, r.exchange.to_text(omit_final_dot=True)) for r in answers]
    if rdtype == "PTR":
        return [r.target.to_text(omit_final_dot=True) for r in answers]
    return [r.address for r in answers]


# pyspf reads DNS through a module function; it is pointed at the lookup of the check running in
# this thread (a context variable), so concurrent deliveries each use their own.
_spf_lookup: contextvars.ContextVar[Lookup] = contextvars.ContextVar("spf_lookup", default=dns_lookup)


def _pyspf_dns(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> list[Any]:
    try:
        answers = _spf_lookup.get()(name, qtype)
    except DNSFailure as exc:
        raise spf.TempError(str(exc)) from exc
    if qtype in ("TXT", "SPF"):
        return [((name, qtype), [a]) for a in answers]
    return [((name, qtype), a) for a in answers]


spf.DNSLookup = _pyspf_dns


@contextmanager
def _spf_dns(lookup: Lookup) -> Iterator[None]:
    token = _spf_lookup.set(lookup)
    try:
        yield
    finally:
        _spf_lookup.reset(token)


_installed: Lookup = dns_lookup


def install_dns(lookup: Lookup) -> Lookup:
    """Make `lookup` the DNS of every check not handed one (tests: records of their own, no network).
    Returns the one it replaces."""
    global _installed
    previous, _installed = _installed, lookup
    return previous


def authenticate(raw: bytes, *, from_address: str, mail_from: str = "", client_ip: str | None = None,
                 helo: str | None = None, trusted_authserv_ids: Iterable[str] = (),
                 dns: Lookup | None = None) -> SenderCheck:
    """Whether `from_address` (the message's From) is authenticated, and how or why not."""
    lookup = dns or _installed
    domain = _domain(from_address)
    if not domain:
        return SenderCheck(False, "the From address has no domain")
    reasons: list[str] = []
    temporary = False
    for check in (lambda: (*_provider(raw, domain, {t.strip().lower() for t in trusted_authserv_ids if t.strip()}),
                           False),
                  lambda: _dkim(raw, domain, lookup),
                  lambda: _spf(domain, mail_from, client_ip, helo, lookup)):
        passed, why, failed_for_now = check()
        if passed:
            return SenderCheck(True, why)
        if why:
            reasons.append(why)
        temporary = temporary or failed_for_now
    return SenderCheck(False, "; ".join(reasons) or "nothing vouches for the From address", temporary=temporary)


# -- 1. a trusted receiver's Authentication-Results -----------------------------------------------


def _provider(raw: bytes, domain: str, trusted: set[str]) -> tuple[bool, str]:
    headers = _header_values(raw, "authentication-results")
    if not headers:
        return False, ""
    ignored: list[str] = []
    for value in headers:
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # noqa: BLE001  (any malformed header is simply not evidence)
            continue
        server = str(parsed.authserv_id or "").lower()
        if server not in trusted:
            ignored.append(server or "?")
            continue
        verdicts = []
        for result in parsed.results:
            method, outcome = str(result.method).lower(), str(result.result).lower()
            verdicts.append(f"{method}={outcome}")
            if outcome == "pass" and any(_aligned(d, domain) for d in _result_domains(method, result)):
                return True, f"{method}=pass for {domain}, reported by trusted {server}"
        return False, f"trusted {server} reported {', '.join(verdicts) or 'nothing'} for {domain}"
    names = ", ".join(sorted(set(ignored)))
    return False, f"Authentication-Results from untrusted {names} ignored"


def _result_domains(method: str, result: Any) -> list[str]:
    wanted = {"dmarc": {("header", "from")}, "dkim": {("header", "d"), ("header", "i")},
              "spf": {("smtp", "mailfrom"), ("smtp", "helo")}}.get(method, set())
    return [_domain(str(p.value)) for p in result.properties if (str(p.type).lower(), str(p.name).lower()) in wanted]


# -- 2. DKIM --------------------------------------------------------------------------------------


def _dkim(raw: bytes, domain: str, lookup: Lookup) -> tuple[bool, str, bool]:
    """(verified and aligned, how or why not, a DNS failure left it undecided)."""
    count = len(_header_values(raw, "dkim-signature"))
    if not count:
        return False, "no DKIM signature", False

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        answers = lookup(name.decode("ascii", "replace").rstrip("."), "TXT")
        return answers[0] if answers else None

    failures = []
    temporary = False
    for idx in range(min(count, MAX_SIGNATURES)):
        verifier = dkim.DKIM(raw)
        try:
            ok, why = verifier.verify(idx=idx, dnsfunc=txt), "it did not verify"
        except DNSFailure as exc:
            ok, why, temporary = False, f"not checked: {exc}", True
        except Exception as exc:  # noqa: BLE001  (dkimpy raises for every malformed signature or key)
            ok, why = False, _sentence(exc)
        signer = (verifier.domain or b"").decode("ascii", "replace").lower()
        if ok and _aligned(signer, domain):
            return True, f"dkim=pass d={signer}", False
        failures.append(f"DKIM signature by {signer}, not {domain}" if ok
                        else f"dkim=fail d={signer or '?'} ({why})")
    return False, "; ".join(failures), temporary


# -- 3. SPF ---------------------------------------------------------------------------------------


def _spf(domain: str, mail_from: str, client_ip: str | None, helo: str | None,
         lookup: Lookup) -> tuple[bool, str, bool]:
    """(SPF passed for an aligned domain, how or why not, a DNS failure left it undecided)."""
    if not client_ip:
        return False, "", False
    sender = mail_from.strip().strip("<>") or f"postmaster@{helo or ''}"
    checked = _domain(sender)
    if not _aligned(checked, domain):
        return False, f"SPF: the envelope sender {mail_from or '<>'} is not at {domain}", False
    try:
        with _spf_dns(lookup):
            result, explanation = spf.check2(i=client_ip, s=sender, h=helo or checked)
    except Exception as exc:  # noqa: BLE001  (a malformed address pyspf cannot read)
        return False, f"SPF not checked ({_sentence(exc)})", False
    if result == "pass":
        return True, f"spf=pass for {checked} from {client_ip}", False
    why = f"spf={result} for {checked} from {client_ip}" + (f" ({explanation})" if explanation else "")
    return False, why, result == "temperror"


# -- helpers --------------------------------------------------------------------------------------


def _header_values(raw: bytes, name: str) -> list[str]:
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    msg = message_from_bytes(head + b"\n\n", policy=policy.compat32)
    return [" ".join(str(v).split()) for v in msg.get_all(name) or []]


def _domain(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()


@lru_cache(maxsize=1)
def _suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _organisational(domain: str) -> str:
    return _suffixes().privatesuffix(domain) or domain


def _aligned(signer: str, domain: str) -> bool:
    """Relaxed alignment: the same organisational domain (mail.acme.example ~ acme.example)."""
    return bool(signer and domain) and (signer == domain or _organisational(signer) == _organisational(domain))


def _sentence(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
