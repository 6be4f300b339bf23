"""Device identifiers: the DID format and the MAC address block.

DID = PREFIX-LL-SSSSSSSS-C: PREFIX the product family (2-8 of A-Z0-9), LL the line (2 digits),
SSSSSSSS the line's sequence number (zero-padded to `digits`), C a Luhn check digit over LL and
the sequence, so a mistyped or misread DID is caught. The hostname is the DID in lower case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


def luhn(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # the check digit will sit to the right, so the rightmost payload digit is doubled
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class DidFormat:
    prefix: str = "PCAM"
    line: str = "01"
    digits: int = 8
    first: int = 1

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z0-9]{2,8}", self.prefix):
            raise ValueError(f"did.prefix {self.prefix!r}: 2-8 capital letters or digits")
        if not re.fullmatch(r"\d{2}", self.line):
            raise ValueError(f"did.line {self.line!r}: two digits (quote it in YAML: \"01\")")
        if not 4 <= self.digits <= 12:
            raise ValueError(f"did.digits {self.digits}: 4 to 12")
        if not 0 <= self.first < self.capacity:
            raise ValueError(f"did.first {self.first}: 0 to {self.capacity - 1}")

    @property
    def capacity(self) -> int:
        return 10**self.digits

    def make(self, seq: int) -> str:
        if not 0 <= seq < self.capacity:
            raise ValueError(f"sequence {seq} does not fit {self.digits} digits")
        body = f"{self.line}{seq:0{self.digits}d}"
        return f"{self.prefix}-{self.line}-{seq:0{self.digits}d}-{luhn(body)}"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{self.prefix}-{self.line}-(\d{{{self.digits}}})-(\d)$")

    def parse(self, did: str) -> int:
        """The sequence number of a DID of this line; ValueError for anything else."""
        m = self.pattern().match(did)
        if m is None:
            raise ValueError(f"{did!r} is not a DID of this line ({self.make(self.first)} is)")
        if luhn(f"{self.line}{m.group(1)}") != int(m.group(2)):
            raise ValueError(f"{did!r}: check digit wrong (mistyped?)")
        return int(m.group(1))


def hostname(did: str) -> str:
    return did.lower()


MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def mac_int(mac: str) -> int:
    if not MAC_RE.match(mac):
        raise ValueError(f"{mac!r} is not a MAC address (xx:xx:xx:xx:xx:xx)")
    return int(mac.replace(":", ""), 16)


def mac_str(value: int) -> str:
    raw = f"{value:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True)
class MacBlock:
    """`count` consecutive unicast addresses from `start`: an IEEE OUI range, or locally administered."""

    start: int
    count: int

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> MacBlock:
        if "oui" in doc:
            oui = str(doc["oui"])
            if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}", oui):
                raise ValueError(f"mac.oui {oui!r}: three octets, e.g. 00:1a:2b")
            start = mac_int(f"{oui}:{doc.get('first', '00:00:00')}")
        else:
            start = mac_int(str(doc.get("block", "02:00:00:00:00:00")))
        count = int(doc.get("count", 0))
        block = cls(start, count)
        block.check()
        return block

    def check(self) -> None:
        first = self.start >> 40
        if first & 1:
            raise ValueError(f"mac block {mac_str(self.start)} is multicast (lowest bit of the first octet)")
        if self.count < 1:
            raise ValueError("mac.count must be at least 1")
        if (self.start + self.count - 1) >> 24 != self.start >> 24:
            raise ValueError(f"mac block {mac_str(self.start)} + {self.count} crosses its OUI (24-bit prefix)")

    @property
    def locally_administered(self) -> bool:
        return bool((self.start >> 40) & 2)

    def address(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise IndexError(f"MAC block exhausted: {self.count} addresses from {mac_str(self.start)} all used")
        return mac_str(self.start + index)
