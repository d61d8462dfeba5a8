"""Replace e-mail addresses, IBANs, payment card numbers, phone and ID numbers in a text.

Used by ``TEXTCLS_LOG_TEXT=redacted``. It errs on the side of redacting: any run of 7-15
digits written like a phone number becomes ``[PHONE]``, while card numbers must pass the Luhn
check, IBANs their mod-97 checksum and Chinese resident ID numbers their ISO 7064 check
digit, so that ordinary long numbers (order ids) survive. Chinese text has no spaces around
numbers ("手机号13812345678谢谢"), so the mainland China rules look for ASCII letters and digits
around a match, not word characters.
"""

from __future__ import annotations

import re

EMAIL = "[EMAIL]"
IBAN = "[IBAN]"
CARD = "[CARD]"
PHONE = "[PHONE]"
ID_NUMBER = "[ID]"

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
# Mainland China mobile: optional +86 / 0086, then 1[3-9]x xxxx xxxx, compact or with single
# spaces or dashes (3-4-4), not inside a longer run of ASCII letters or digits (nor followed by
# another digit group: then it is a card or account number).
_CN_MOBILE_RE = re.compile(
    r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9A-Za-z]|[ -]\d)"
)
# Resident identity card (GB 11643): 6-digit area, birth date YYYYMMDD, 3-digit sequence,
# check digit 0-9 or X.
_CN_ID_RE = re.compile(
    r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
    r"(?![0-9A-Za-z])"
)
_CN_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CN_ID_CHECK = "10X98765432"
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


def cn_id_ok(candidate: str) -> bool:
    """True when an 18-character resident ID number has its ISO 7064 MOD 11-2 check digit."""
    if len(candidate) != 18 or not candidate[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(candidate[:17], _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11] == candidate[17].upper()


def _cn_id(m: re.Match[str]) -> str:
    return ID_NUMBER if cn_id_ok(m.group(0)) else m.group(0)


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
    """``text`` with personal data replaced by ``[EMAIL]``, ``[ID]``, ``[IBAN]``, ``[CARD]``,
    ``[PHONE]``."""
    text = _EMAIL_RE.sub(EMAIL, text)
    # Before the card rule: an 18-digit ID number can pass the Luhn check too.
    text = _CN_ID_RE.sub(_cn_id, text)
    text = _IBAN_RE.sub(_iban, text)
    # Before the card rule: "+86 138 1234 5678" is 13 digits, which may pass the Luhn check.
    text = _CN_MOBILE_RE.sub(PHONE, text)
    text = _CARD_RE.sub(_card, text)
    return _PHONE_RE.sub(_phone, text)
