"""PII: find e-mail addresses, phone numbers, card numbers (Luhn), IBANs (mod-97), IP addresses,
national-id-like numbers, API keys/secrets and title-led person names; redact them with typed
placeholders (`[EMAIL]`, ...) or reject the record. Pure regex + checksums: works offline.

Each detector is a pattern plus an optional validator; a match the validator refuses (a 16-digit
number failing Luhn, a reserved documentation address) is left alone. Detectors run in order, on
the text the previous ones produced, so a card number inside an IBAN is not counted twice.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from synthloop.curation.config import PIIConfig
from synthloop.curation.text import rewrite_content
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record

#: RFC 2606 / 6761 names reserved for examples: addresses there are not anyone's.
_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", ".example", ".test", ".invalid", ".localhost")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    # Issuer prefixes (Visa, Mastercard, Amex, Discover, JCB, Diners) cut Luhn's 1-in-10 false hits.
    return 13 <= len(digits) <= 19 and re.match(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9])|35|3[068]", digits) is not None and luhn_ok(digits)


def _iban(match: str) -> bool:
    """ISO 13616 mod-97 check."""
    s = re.sub(r"\s", "", match).upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _email(match: str) -> bool:
    domain = match.rsplit("@", 1)[1].lower()
    return not any(domain == d.lstrip(".") or domain.endswith(d if d.startswith(".") else "." + d) for d in _EXAMPLE_DOMAINS)


def _ip(match: str) -> bool:
    """Public addresses only: loopback, private, link-local and documentation ranges identify no one."""
    try:
        ip = ipaddress.ip_address(match)
    except ValueError:
        return False
    if ip.version == 6:  # only global unicast (2000::/3): "add::be" in C++ is a valid address too
        return ip.is_global and ip in _GLOBAL_UNICAST
    return ip.is_global


_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def _phone(match: str) -> bool:
    return 10 <= len(re.sub(r"\D", "", match)) <= 15


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None = None
    #: A cheap test on the whole text: skip the regex when it is False (most text has no '@').
    needs: Callable[[str], bool] | None = None

    @property
    def placeholder(self) -> str:
        return f"[{self.kind.upper()}]"


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


_DIGIT = re.compile(r"\d")
_B = r"(?<![\w.+-])"  # left boundary that does not split an address or a number

_TOKEN_PREFIXES = ("AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "sk-", "xox", "AIza",
                   "_live_", "PRIVATE KEY")
_SECRET_WORDS = ("api", "secret", "token", "passw")
_TITLES = ("Mr", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Dame")

#: In run order. A kind may have several detectors; `PIIConfig.<kind>` switches them together.
DETECTORS: list[Detector] = [
    Detector("secret", re.compile(
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b"  # GitHub tokens
        r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"  # OpenAI / Anthropic style keys
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"  # Slack
        r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API key
        r"|\b(?:sk|rk|pk)_live_[0-9A-Za-z]{16,}\b"  # Stripe
        r"|-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|\Z)"
    ), None, lambda t: any(p in t for p in _TOKEN_PREFIXES)),
    Detector("secret", re.compile(  # `api_key = "..."`: the name stays, the value goes
        r"(?P<keep>(?i:\b(?:api[_-]?key|secret|token|password|passwd)\b)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9_\-/+]{16,}"
    ), None, lambda t: any(w in t.lower() for w in _SECRET_WORDS)),
    Detector("email", re.compile(_B + r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b"), _email, lambda t: "@" in t),
    Detector("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), _iban, _has_digit),
    Detector("credit_card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), _card, _has_digit),
    Detector("national_id", re.compile(
        r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"  # US SSN (dashed form only)
        r"|\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"  # UK NINO
    ), None, _has_digit),
    Detector("phone", re.compile(
        r"(?<![\w.+-])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![ .-]?\d)"
    ), _phone, _has_digit),
    Detector("ip", re.compile(
        # IPv4; a full stop after it ends the sentence ("from 93.184.216.34."), only ".digit"
        # continues a longer dotted number (a version string), which is not an address.
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\d|\.\d)"
        # IPv6, full or "::"-compressed; `ipaddress` decides (a clock time "12:30:45" is refused).
        r"|(?<!\w)(?<![0-9A-Fa-f]:)(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7})(?:(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:)"
        r"(?!\w|:[0-9A-Fa-f])"
    ), _ip, lambda t: "." in t or "::" in t or t.count(":") >= 7),
    Detector("name", re.compile(
        r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.? (?:[A-Z][a-z'-]+ ){0,2}[A-Z][a-z'-]+"
    ), None, lambda t: any(x in t for x in _TITLES)),
]


class PIIScrubber:
    """Detects and redacts the enabled kinds; `scrub(text)` returns the text and counts per kind."""

    def __init__(self, cfg: PIIConfig | None = None) -> None:
        cfg = cfg or PIIConfig()
        self.detectors = [d for d in DETECTORS if getattr(cfg, d.kind)]

    def scrub(self, text: str) -> tuple[str, Counter[str]]:
        found: Counter[str] = Counter()
        for det in self.detectors:
            if det.needs is not None and not det.needs(text):
                continue
            text = det.pattern.sub(lambda m, d=det: self._replace(m, d, found), text)  # type: ignore[misc]
        return text, found

    @staticmethod
    def _replace(m: re.Match[str], det: Detector, found: Counter[str]) -> str:
        if det.valid is not None and not det.valid(m.group(0)):
            return m.group(0)
        found[det.kind] += 1
        keep = m.group("keep") if "keep" in m.re.groupindex else None
        return (keep or "") + det.placeholder

    def find(self, text: str) -> Counter[str]:
        return self.scrub(text)[1]


class PIIStage(Stage):
    """Redacts PII in every content field (counted per kind as `pii_<kind>`); with
    `action = "reject"` the (redacted) record is also rejected."""

    name = "pii"

    def __init__(self, cfg: PIIConfig | None = None) -> None:
        self.cfg = cfg or PIIConfig()
        self.scrubber = PIIScrubber(self.cfg)

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for record in records:
            stats.seen += 1
            with ctx.timer(self.name):
                found = self._process(record)
            for kind, n in found.items():
                ctx.count(self.name, f"pii_{kind}", n)
            if found and self.cfg.action == "reject":
                kinds = ", ".join(f"{k} x{n}" for k, n in sorted(found.items()))
                ctx.reject(record, self.name, f"pii: {kinds}")
                continue
            stats.kept += 1
            yield record

    def _process(self, record: Record) -> Counter[str]:
        """Redact in place whatever the action: a rejected record goes to the rejects store, which
        must not hold the PII either."""
        total: Counter[str] = Counter()

        def scrub(text: str) -> str:
            new, found = self.scrubber.scrub(text)
            total.update(found)
            return new

        rewrite_content(record, scrub)
        return total


__all__ = ["DETECTORS", "Detector", "PIIScrubber", "PIIStage", "luhn_ok"]
