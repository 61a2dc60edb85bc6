"""Framing between the service and its executor processes (standard library only).

A message is one JSON header line naming its binary parts and their lengths, then the parts'
raw bytes in that order: `{"...": ..., "blobs": {"stdout": 12, "stderr": 0}}\n` + 12 bytes.
JSON rather than pickle so a compromised executor cannot run code in the service by answering.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

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


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], Blobs] | None:
    """Blocking read of one message (the executor side); None at end of stream."""
    line = stream.readline()
    if not line:
        return None
    header, parts = split_header(line)
    blobs: Blobs = {}
    for name, length in parts:
        data = stream.read(length)
        if len(data) != length:
            raise EOFError("executor channel closed inside a message")
        blobs[name] = data
    return header, blobs
