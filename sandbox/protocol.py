"""Framing between the service and its executor processes (standard library only).

A message is one JSON header line naming its binary parts and their lengths, then the parts'
raw bytes in that order: `{"...": ..., "blobs": {"stdout": 12, "stderr": 0}}\n` + 12 bytes.
JSON rather than pickle so a compromised executor cannot run code in the service by answering.
Towards the executor, each message is preceded by a control frame (`control_frame`) that the
executor reads; the message itself is read by the run's own process (`decode`).
"""

from __future__ import annotations

import json
from typing import Any

Blobs = dict[str, bytes]


def encode(header: dict[str, Any], blobs: Blobs | None = None) -> bytes:
    blobs = blobs or {}
    head = dict(header, blobs={name: len(data) for name, data in blobs.items()})
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + b"".join(blobs.values())


def split_header(line: bytes) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """Parse a header line; return it and the (name, length) of each blob that follows."""
    header = json.loads(line)
    if not isinstance(header, dict) or not isinstance(header.get("blobs"), dict):
        raise ValueError("malformed executor message header")
    parts = [(str(name), int(length)) for name, length in header.pop("blobs").items()]
    if any(length < 0 for _, length in parts):
        raise ValueError("negative blob length")
    return header, parts


def decode(data: bytes) -> tuple[dict[str, Any], Blobs]:
    """A whole message held in memory (a run's payload, read by the run's own process)."""
    line, _, rest = data.partition(b"\n")
    header, parts = split_header(line)
    blobs: Blobs = {}
    offset = 0
    for name, length in parts:
        if offset + length > len(rest):
            raise ValueError("message shorter than its header says")
        blobs[name] = rest[offset:offset + length]
        offset += length
    return header, blobs


def control_frame(control: dict[str, Any]) -> bytes:
    """The executor's control frame: `m`, the JSON's length in 10 digits, the JSON (see zygote)."""
    body = json.dumps(control, separators=(",", ":")).encode()
    return b"m%010d" % len(body) + body


CANCEL = b"x"
