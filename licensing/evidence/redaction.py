"""Redaction of personal data for the shared copy of a bundle.

Victims, witnesses, reporters and suspects are held apart on incidents
(`IncidentPerson`). In the shared copy each person becomes a role label ("Witness 1"),
numbered in order of first appearance across the whole bundle, and every value known for
them (name, phone, email, address) is replaced by that label wherever it appears in free
text. Phone numbers and email addresses nobody recorded as personal data are caught by
pattern. The log says what kind of value was redacted in which item, never the value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

ROLE_LABELS = {
    "victim": "Victim",
    "witness": "Witness",
    "reporter": "Reporter",
    "suspect": "Suspect",
}
PERSONAL_FIELDS = ("name", "phone", "email", "address")

# Email addresses, and UK phone numbers (0 or +44 then 9-10 more digits, with spaces,
# dots, hyphens or brackets between). Dates ("2026-03-14") and crime references
# ("RMS-2026-001234") do not start with 0 or +44 followed by that many digits.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE_PATTERN = re.compile(r"(?<![\w+])(?:\+44\s?\(?0?\)?|\(?0)(?:[\s.()-]*\d){9,10}(?!\w)")
PHONE_REPLACEMENT = "[phone number redacted]"
EMAIL_REPLACEMENT = "[email address redacted]"


def digits(value: str) -> str:
    """Only the digits of a value: how phone numbers are compared."""
    return "".join(ch for ch in value if ch.isdigit())


def _national(number: str) -> str:
    # +44 7700 900123 and 07700 900123 are the same number.
    found = digits(number)
    if found.startswith("44") and len(found) >= 11:
        return "0" + found[2:]
    return found


@dataclass(frozen=True)
class KnownValue:
    """One personal value and what replaces it."""

    category: str  # e.g. "witness name"
    value: str
    label: str  # e.g. "Witness 1"


@dataclass
class Redactor:
    """Turns people into role labels and strips their details from text, counting what
    it redacted per item for the log."""

    labels: dict[tuple[str, str], str] = field(default_factory=dict)
    known: list[KnownValue] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (item, category)
    _numbers: Counter[str] = field(default_factory=Counter)
    _pattern: re.Pattern[str] | None = None
    _by_text: dict[str, KnownValue] = field(default_factory=dict)
    _phones: dict[str, KnownValue] = field(default_factory=dict)

    def label_for(self, role: str, identity: str) -> str:
        """The role label of a person, the same wherever they appear in the bundle."""
        key = (role, identity)
        if key not in self.labels:
            self._numbers[role] += 1
            self.labels[key] = f"{ROLE_LABELS.get(role, role.title())} {self._numbers[role]}"
        return self.labels[key]

    def add_person(self, role: str, values: dict[str, str]) -> str:
        """Register a person's values (again is harmless); returns their role label."""
        cleaned = {name: (values.get(name) or "").strip() for name in PERSONAL_FIELDS}
        identity = (
            cleaned["name"].casefold()
            or cleaned["email"].casefold()
            or _national(cleaned["phone"])
            or cleaned["address"].casefold()
            or f"unnamed-{len(self.labels)}"
        )
        label = self.label_for(role, identity)
        for name, value in cleaned.items():
            folded = " ".join(value.split()).casefold()
            if len(value) < 2 or folded in self._by_text:
                continue
            known = KnownValue(f"{role} {name}", value, label)
            self.known.append(known)
            if name == "phone" and len(digits(value)) >= 6:
                self._phones[_national(value)] = known
            self._by_text[folded] = known
            self._pattern = None
        return label

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None and self._by_text:
            # Longest first, so "Jane Smith" wins over "Jane"; whitespace runs match any
            # whitespace; word boundaries where the value starts or ends with a word
            # character, so "Al" does not eat the middle of "Alcohol".
            parts = []
            for value in sorted(self._by_text, key=len, reverse=True):
                body = r"\s+".join(re.escape(word) for word in value.split())
                start = r"(?<!\w)" if value[0].isalnum() else ""
                end = r"(?!\w)" if value[-1].isalnum() else ""
                parts.append(f"{start}{body}{end}")
            self._pattern = re.compile("|".join(parts), re.IGNORECASE)
        return self._pattern

    def redact(self, text: str, item: str) -> str:
        """The text with known values replaced by labels and any other phone numbers and
        email addresses replaced by a marker; counts are kept against `item`."""
        if not text:
            return text
        pattern = self._compiled()
        if pattern is not None:

            def known_value(match: re.Match[str]) -> str:
                known = self._by_text[" ".join(match.group(0).split()).casefold()]
                self.counts[(item, known.category)] += 1
                return known.label

            text = pattern.sub(known_value, text)

        def email(match: re.Match[str]) -> str:
            self.counts[(item, "email address in free text")] += 1
            return EMAIL_REPLACEMENT

        def phone(match: re.Match[str]) -> str:
            known = self._phones.get(_national(match.group(0)))
            if known is not None:  # a recorded number written another way
                self.counts[(item, known.category)] += 1
                return known.label
            self.counts[(item, "phone number in free text")] += 1
            return PHONE_REPLACEMENT

        text = EMAIL_PATTERN.sub(email, text)
        return PHONE_PATTERN.sub(phone, text)

    def replace_known(self, text: str, replacement: str) -> str:
        """`text` with every known value replaced by `replacement` (no counting, and no
        pattern search for other numbers or addresses): for erasing one person."""
        pattern = self._compiled()
        return pattern.sub(replacement, text) if pattern is not None and text else text

    def count(self, item: str, category: str, times: int = 1) -> None:
        """Record a redaction made outside `redact` (a person shown only as a label)."""
        self.counts[(item, category)] += times

    def found_in(self, text: str) -> list[str]:
        """The categories of known values that occur in `text` (for checking attachments;
        the values themselves are never returned)."""
        if not text:
            return []
        found: list[str] = []
        folded = " ".join(text.split()).casefold()
        for known in self.known:
            if known.category.endswith(" phone"):
                hit = _national(known.value) in digits(text)
            else:
                hit = " ".join(known.value.split()).casefold() in folded
            if hit and known.category not in found:
                found.append(known.category)
        return found

    def values(self) -> Iterable[str]:
        """Every known personal value (for tests that prove none leaked)."""
        return (known.value for known in self.known)
