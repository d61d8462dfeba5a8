"""Redaction of e-mail addresses, phone numbers, card numbers and IBANs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.predlog.redaction import cn_id_ok, iban_ok, luhn_ok, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jo.doe+bank@mail.example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 was charged", "card [CARD] was charged"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("amex 378282246310005.", "amex [CARD]."),
        ("iban GB82 WEST 1234 5698 7654 32 please", "iban [IBAN] please"),
        ("DE89370400440532013000", "[IBAN]"),
        ("fr14 2004 1010 0505 0001 3m02 606", "[IBAN]"),
        ("call +44 20 7946 0958 now", "call [PHONE] now"),
        ("or (555) 123-4567, or 0049-30-1234567", "or [PHONE], or [PHONE]"),
        ("ring 07700900123", "ring [PHONE]"),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 12345 placed on 2024-05-01 and 01/05/2024",
        "version 1.2.3 costs 12.50 EUR",
        "card 4111 1111 1111 1112 fails Luhn",  # 16 digits: too long for a phone number
        "GB82WEST12345698765431",  # wrong IBAN check digits
        "ticket 123456",
        "user@localhost is not an address with a domain",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")


def _luhn_complete(body: list[int]) -> str:
    for check in range(10):
        digits = "".join(map(str, body)) + str(check)
        if luhn_ok(digits):
            return digits
    raise AssertionError("unreachable")


@given(
    body=st.lists(st.integers(0, 9), min_size=12, max_size=18).filter(lambda b: b[0] != 0),
    sep=st.sampled_from(["", " ", "-"]),
)
def test_any_luhn_valid_card_is_redacted(body: list[int], sep: str) -> None:
    digits = _luhn_complete(body)
    grouped = sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    assert redact(f"my card is {grouped} thanks") == "my card is [CARD] thanks"


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"], blacklist_characters="@")))
def test_text_without_digits_or_at_signs_is_untouched(text: str) -> None:
    assert redact(text) == text


# Resident ID numbers below carry valid ISO 7064 MOD 11-2 check digits (X = 10), computed by
# hand from the weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2; they belong to no one.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的手机号13812345678谢谢", "我的手机号[PHONE]谢谢"),
        ("电话：+86 138 1234 5678", "电话：[PHONE]"),
        ("联系0086-139-1234-5678", "联系[PHONE]"),
        ("手机 186-1234-5678。", "手机 [PHONE]。"),
        ("+8615912345678", "[PHONE]"),
        ("身份证号11010519491231002X，请核实", "身份证号[ID]，请核实"),
        ("身份证440308200107151235", "身份证[ID]"),
        ("id 11010519491231002x lower-case x", "id [ID] lower-case x"),
    ],
)
def test_mainland_china_mobile_and_resident_id_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "身份证110105194912310021",  # wrong check digit (should be X)
        "身份证110105194913310025",  # month 13
        "订单号12812345678",  # second digit 2: not a mobile prefix
        "订单138123456789",  # 12 digits
        "手机1381234567号",  # 10 digits
        "SKU13812345678A",  # inside a product code
        "金额13,812,345元",
        "2024年5月1日下单",
    ],
)
def test_chinese_near_misses_are_kept(text: str) -> None:
    assert redact(text) == text


def test_cn_id_check_digit() -> None:
    assert cn_id_ok("11010519491231002X") and cn_id_ok("440308200107151235")
    assert not cn_id_ok("110105194912310021") and not cn_id_ok("1101051949123100")
