"""The evidence store: files kept under their SHA-256, outside the web root.

Attachments and rendered bundles (PDFs and ZIPs) live here. A file's name is its hash,
so nothing a user typed ever becomes part of a path, the same content is stored once,
and a file can be checked against the hash the database holds for it.

Two kinds of store, chosen by EVIDENCE_STORE (every node of a deployment must use the
same one):
- "directory" (the default): EVIDENCE_DIR, two-level fan-out by hash; on a shared mount
  when there are several web nodes;
- "s3": an S3-compatible bucket (AWS S3, MinIO, Ceph), EVIDENCE_S3_BUCKET under
  EVIDENCE_S3_PREFIX, the same fan-out in the keys. Credentials come from boto3's usual
  chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, the instance's role).

Either way `put` never leaves a half-written file under a good name (a directory store
writes a temporary file and renames it; an S3 PUT is whole or nothing), and a failure to
write raises OSError, which the callers turn into StorageFailed (507).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from flask import Flask, current_app

from licensing.errors import DomainError

_HEX64 = re.compile(r"[0-9a-f]{64}")
KINDS = ("directory", "s3")


class MissingEvidence(RuntimeError):
    """A file the database refers to is not in the store, or no longer matches its hash."""


class StorageFailed(DomainError):
    """A file could not be written to the store (the disk is full, or not writable; the
    bucket unreachable): 507 Insufficient Storage, said plainly to the user; nothing was
    saved."""

    code = "storage_failed"
    status = 507


class Backend(Protocol):
    """Where the bytes go: a directory or a bucket. Digests are checked by the caller."""

    def has(self, digest: str) -> bool:
        """Whether a file with this hash is stored."""
        ...

    def write(self, digest: str, data: bytes) -> None:
        """Store `data` under `digest`, whole or not at all; OSError on failure."""
        ...

    def read(self, digest: str) -> bytes | None:
        """The bytes stored under `digest`, or None if there are none."""
        ...

    def digests(self) -> Iterator[str]:
        """Every stored file's hash."""
        ...

    def writable(self) -> bool:
        """Whether a file can be written (and removed) now: the readiness check."""
        ...


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A file to write that appears at `target` only when the block ends without error:
    written beside it, flushed to disk, made owner-only and renamed into place. On any
    error the temporary file is removed and `target` is as it was, so a crash or a full
    disk never leaves a half-written file under a good name."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _checked(digest: str) -> str:
    if not _HEX64.fullmatch(digest):
        raise ValueError("not a SHA-256 hex digest")
    return digest


# ---- a directory ----------------------------------------------------------------------


class DirectoryStore:
    """Files under a directory, `ab/abcdef…` (two-level fan-out keeps directories small)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        """Where the file with this hash lives."""
        return self.root / digest[:2] / _checked(digest)

    def has(self, digest: str) -> bool:
        """Whether a file with this hash is stored."""
        return self.path_for(digest).exists()

    def write(self, digest: str, data: bytes) -> None:
        """Written through `atomic_file`; on an error (such as ENOSPC, the disk full)
        nothing is left under the hash and the OSError is raised."""
        with atomic_file(self.path_for(digest)) as out:
            out.write(data)

    def read(self, digest: str) -> bytes | None:
        """The stored bytes, or None."""
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            return None

    def digests(self) -> Iterator[str]:
        """Every stored file's hash (temporary files left by a crash are not files)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/*")):
            if _HEX64.fullmatch(path.name) and path.is_file():
                yield path.name

    def writable(self) -> bool:
        """Whether a file can be created (and removed) in the directory."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ready-"):
                pass
        except OSError:
            return False
        return True


# ---- an S3-compatible bucket ----------------------------------------------------------


class S3Store:
    """Objects in an S3-compatible bucket, `PREFIX ab/abcdef…`. Every failure to reach or
    write the bucket is raised as OSError, as a directory's would be."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key_for(self, digest: str) -> str:
        """The object key of the file with this hash."""
        return f"{self.prefix}{digest[:2]}/{_checked(digest)}"

    def _failed(self, error: Exception) -> OSError:
        return OSError(f"evidence bucket {self.bucket}: {error}")

    def _object(self, method: Any, digest: str) -> Any | None:
        """The bucket's answer to `method` (head_object, get_object) for the object with
        this hash, or None when there is no such object; OSError for any other failure."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(Bucket=self.bucket, Key=self.key_for(digest))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._failed(error) from error
        except BotoCoreError as error:
            raise self._failed(error) from error

    def has(self, digest: str) -> bool:
        """Whether an object with this hash is stored (HEAD)."""
        return self._object(self.client.head_object, digest) is not None

    def write(self, digest: str, data: bytes) -> None:
        """One PUT, with the content's SHA-256 for the store to check on arrival: the
        object is there whole, or not at all."""
        import base64

        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key_for(digest),
                Body=data,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode("ascii"),
            )
        except (BotoCoreError, ClientError) as error:
            raise self._failed(error) from error

    def read(self, digest: str) -> bytes | None:
        """The stored bytes, or None; OSError when the bucket cannot be read."""
        from botocore.exceptions import BotoCoreError, ClientError

        response = self._object(self.client.get_object, digest)
        if response is None:
            return None
        try:
            data: bytes = response["Body"].read()
        except (BotoCoreError, ClientError) as error:  # the connection lost mid-body
            raise self._failed(error) from error
        return data

    def digests(self) -> Iterator[str]:
        """Every stored object's hash, listed a page at a time."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if _HEX64.fullmatch(name):
                        yield name
        except (BotoCoreError, ClientError) as error:
            raise self._failed(error) from error

    def writable(self) -> bool:
        """Whether an object can be written (and removed) under the prefix now."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}.ready-{uuid.uuid4().hex}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError):
            return False
        return True


def s3_client(config: Any) -> Any:
    """A boto3 S3 client for the configured endpoint and region (short timeouts and few
    retries: a request waiting on a dead store should fail, not hang)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        endpoint_url=str(config.get("EVIDENCE_S3_ENDPOINT_URL") or "") or None,
        region_name=str(config.get("EVIDENCE_S3_REGION") or "") or None,
        config=BotoConfig(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def check_config(config: Any) -> None:
    """Refuse a store that cannot work: an unknown kind, or "s3" without a bucket."""
    from config import ConfigError

    kind = str(config.get("EVIDENCE_STORE") or "directory")
    if kind not in KINDS:
        raise ConfigError(f"EVIDENCE_STORE must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "s3" and not config.get("EVIDENCE_S3_BUCKET"):
        raise ConfigError('EVIDENCE_STORE is "s3": EVIDENCE_S3_BUCKET must name the bucket')


def init_app(app: Flask) -> None:
    """Check the store's configuration; for a bucket, make the app's one S3 client (boto3
    clients are thread-safe and hold the connection pool)."""
    check_config(app.config)
    if app.config.get("EVIDENCE_STORE") == "s3":
        prefix = str(app.config.get("EVIDENCE_S3_PREFIX") or "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        app.extensions["evidence_s3"] = S3Store(
            s3_client(app.config), str(app.config["EVIDENCE_S3_BUCKET"]), prefix
        )


def backend() -> Backend:
    """The current app's store: its bucket, or EVIDENCE_DIR as configured now."""
    bucket: S3Store | None = current_app.extensions.get("evidence_s3")
    if bucket is not None:
        return bucket
    return DirectoryStore(Path(str(current_app.config["EVIDENCE_DIR"])))


def describe() -> str:
    """The store in words, for logs and command output."""
    store = backend()
    if isinstance(store, S3Store):
        return f"bucket {store.bucket} under {store.prefix or '/'}"
    return f"directory {current_app.config['EVIDENCE_DIR']}"


def path_for(digest: str) -> Path:
    """Where the file with this hash lives in a directory store."""
    store = backend()
    if not isinstance(store, DirectoryStore):
        raise RuntimeError(f"the evidence store is not a directory: it is the {describe()}")
    return store.path_for(digest)


def put(data: bytes) -> str:
    """Store bytes and return their SHA-256 (once: the same content is not written
    again). On an error (the disk full, the bucket unreachable) nothing is stored under
    the hash and OSError is raised."""
    digest = sha256_of(data)
    store = backend()
    if not store.has(digest):
        store.write(digest, data)
    return digest


def get(digest: str) -> bytes:
    """The stored bytes with this hash, checked against it."""
    data = backend().read(_checked(digest))
    if data is None:
        raise MissingEvidence(f"file {digest[:12]}… is missing from the evidence store")
    if sha256_of(data) != digest:
        raise MissingEvidence(f"file {digest[:12]}… no longer matches its hash")
    return data


def writable() -> bool:
    """Whether the store takes a file now (the readiness check)."""
    return backend().writable()
