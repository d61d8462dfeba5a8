"""Replace e-mail addresses, IBANs, payment card numbers and phone numbers in a text.

Used by ``TEXTCLS_LOG_TEXT=redacted``. It errs on the side of redacting: any run of 7-15
digits written like a phone number becomes ``[PHONE]``, while card numbers must pass the Luhn
check and IBANs their mod-97 checksum, so that ordinary long numbers (order ids) survive.
"""

from __future__ import annotations

import re

EMAIL = "[EMAIL]"
IBAN = "[IBAN]"
CARD = "[CARD]"
PHONE = "[PHONE]"

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?!\w)"
)
# Country code, two check digits, then 11-30 letters/digits: compact or in groups of four.
_IBAN_RE = re.compile(
    r"(?<!\w)[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?!\w)",
    re.IGNORECASE,
)
# 13-19 digits, optionally separated by single spaces or dashes.
_CARD_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# An optional + or 00 prefix, then digit groups separated by spaces, dots, dashes or brackets.
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+|\b00)?\(?\d(?:[\s.()-]{0,2}\d){6,16}(?!\w)")
# Dates look like phone numbers to the pattern above; they are not personal data here.
_DATE_RE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """True when ``candidate`` (spaces allowed) has a valid IBAN mod-97 checksum."""
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _iban(m: re.Match[str]) -> str:
    return IBAN if iban_ok(m.group(0)) else m.group(0)


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", m.group(0))
    return CARD if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)


def _phone(m: re.Match[str]) -> str:
    found = m.group(0)
    if _DATE_RE.fullmatch(found):
        return found
    digits = sum(ch.isdigit() for ch in found)
    return PHONE if 7 <= digits <= 15 else found


def redact(text: str) -> str:
    """``text`` with personal data replaced by ``[EMAIL]``, ``[IBAN]``, ``[CARD]``, ``[PHONE]``."""
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _IBAN_RE.sub(_iban, text)
    text = _CARD_RE.sub(_card, text)
    return _PHONE_RE.sub(_phone, text)
