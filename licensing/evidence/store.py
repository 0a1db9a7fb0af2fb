"""The evidence store: files kept under their SHA-256, outside the web root.

Attachments and rendered bundles (PDFs and ZIPs) live here. A file's name is its hash,
so nothing a user typed ever becomes part of a path, the same content is stored once,
and a file can be checked against the hash the database holds for it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from flask import current_app

from licensing.errors import DomainError

_HEX64 = re.compile(r"[0-9a-f]{64}")


class MissingEvidence(RuntimeError):
    """A file the database refers to is not in the store, or no longer matches its hash."""


class StorageFailed(DomainError):
    """A file could not be written to the store (the disk is full, or not writable):
    507 Insufficient Storage, said plainly to the user; nothing was saved."""

    code = "storage_failed"
    status = 507


def root() -> Path:
    """The store's directory (EVIDENCE_DIR), created owner-only on first use."""
    path = Path(str(current_app.config["EVIDENCE_DIR"]))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def path_for(digest: str) -> Path:
    """Where the file with this hash lives (two-level fan-out keeps directories small)."""
    if not _HEX64.fullmatch(digest):
        raise ValueError("not a SHA-256 hex digest")
    return root() / digest[:2] / digest


def put(data: bytes) -> str:
    """Store bytes and return their SHA-256. Written to a temporary file and renamed, so
    a crash never leaves a half-written file under a good name; on an error (such as
    ENOSPC, the disk full) the temporary file is removed and the OSError raised."""
    digest = sha256_of(data)
    target = path_for(digest)
    if target.exists():
        return digest
    target.parent.mkdir(mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest


def get(digest: str) -> bytes:
    """The stored bytes with this hash, checked against it."""
    try:
        data = path_for(digest).read_bytes()
    except FileNotFoundError:
        raise MissingEvidence(f"file {digest[:12]}… is missing from the evidence store") from None
    if sha256_of(data) != digest:
        raise MissingEvidence(f"file {digest[:12]}… no longer matches its hash")
    return data
