"""`ip addr show` read into facts, as iproute2 and busybox print it (a student's container, or
a document's, may have either): interface -> its IPv4 addresses."""

from __future__ import annotations

import ipaddress
import re

_LINK = re.compile(r"^\d+:\s+([^:@\s]+)[@:]")
_INET = re.compile(r"^\s+inet\s+(\d+\.\d+\.\d+\.\d+(?:/\d+)?)")


def parse_ip_addr(text: str) -> dict[str, list[ipaddress.IPv4Interface]]:
    """Each interface with its IPv4 addresses (a /32 where the output gives no prefix)."""
    result: dict[str, list[ipaddress.IPv4Interface]] = {}
    current = ""
    for line in text.splitlines():
        if link := _LINK.match(line):
            current = link[1]
            result.setdefault(current, [])
        elif (inet := _INET.match(line)) and current:
            result[current].append(ipaddress.IPv4Interface(inet[1]))
    return result
