"""PII redaction for stored message text: e-mail addresses, phone numbers, card numbers and IBANs.

Redaction is deliberately conservative about numbers: order numbers, dates and amounts are what
agents and retraining need, so a digit run only counts as a phone number when it is shaped like one
(a ``+``/``00`` prefix or separators) and as a card number only when its Luhn checksum holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

EMAIL_TOKEN = "[EMAIL]"
PHONE_TOKEN = "[PHONE]"
CARD_TOKEN = "[CARD]"
IBAN_TOKEN = "[IBAN]"

# The look-behind lets a match start only where a local part can start, which keeps the scan
# linear (without it a long run of word characters costs quadratic time).
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# Country code, two check digits, then the account part, written compact or in groups of four.
_IBAN_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# 13-19 digits, single spaces or dashes allowed between them.
_CARD_RE = re.compile(r"(?<![\d\w])\d(?:[ -]?\d){12,18}(?![\d\w])")
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().\-/]{5,22}\d(?![\w])")
_DATE_RE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_SEPARATORS = re.compile(r"[ ().\-/]")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _looks_like_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 8 <= len(digits) <= 15:
        return False
    if _DATE_RE.fullmatch(candidate.strip("()")):
        return False
    if candidate.startswith(("+", "00")):
        return True
    # A bare digit run is an order or tracking number far more often than a phone number.
    return len(_SEPARATORS.findall(candidate)) >= 1 and candidate[0] in "(0123456789"


@dataclass
class RedactionResult:
    text: str
    counts: dict[str, int] = field(default_factory=dict)


def redact_with_counts(text: str) -> RedactionResult:
    """Redacted text and how many of each kind were replaced (the counts carry no PII)."""
    counts: dict[str, int] = {}
    for kind, pattern, token, accept in _RULES:

        def sub(m: re.Match[str], kind: str = kind, token: str = token,
                accept: Callable[[str], bool] = accept) -> str:
            if not accept(m.group(0)):
                return m.group(0)
            counts[kind] = counts.get(kind, 0) + 1
            return token

        text = pattern.sub(sub, text)
    return RedactionResult(text, counts)


def _iban_shaped(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    # IBANs are 15-34 characters; the tail holds digits (a word in capitals does not).
    return 15 <= len(compact) <= 34 and sum(c.isdigit() for c in compact[4:]) >= 6


# Order matters: an IBAN or a card number would otherwise be half-eaten as a phone number.
_RULES: tuple[tuple[str, re.Pattern[str], str, Callable[[str], bool]], ...] = (
    ("email", _EMAIL_RE, EMAIL_TOKEN, lambda s: True),
    ("iban", _IBAN_RE, IBAN_TOKEN, _iban_shaped),
    ("card", _CARD_RE, CARD_TOKEN, lambda s: luhn_valid(re.sub(r"\D", "", s))),
    ("phone", _PHONE_RE, PHONE_TOKEN, _looks_like_phone),
)


def redact(text: str) -> str:
    """Replace e-mails, phone numbers, Luhn-valid card numbers and IBAN-like strings with tokens."""
    return redact_with_counts(text).text
