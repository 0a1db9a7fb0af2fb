"""The bundle ZIP: the PDF, the attachments and a manifest of their hashes.

The ZIP is byte-for-byte reproducible: members in a fixed order, fixed timestamps (the
build date), fixed permissions and compression level, and a manifest written as
canonical JSON. `verify_zip` checks a ZIP against its own manifest, so anyone holding
the file can tell whether it is what the police issued.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date
from typing import Any

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "licensing-evidence-bundle/1"


@dataclass(frozen=True)
class Member:
    """One file in the ZIP."""

    name: str
    data: bytes


def _info(name: str, day: date) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever machine builds it
    info.external_attr = 0o644 << 16
    return info


def file_entry(member: Member) -> dict[str, Any]:
    """A manifest line: name, SHA-256 and size."""
    return {
        "name": member.name,
        "sha256": hashlib.sha256(member.data).hexdigest(),
        "size": len(member.data),
    }


def manifest_bytes(facts: dict[str, Any], members: list[Member]) -> bytes:
    """The manifest: the bundle's facts plus every file's hash and size, as canonical
    JSON (sorted keys, so the same facts give the same bytes)."""
    manifest = dict(facts)
    manifest["format"] = MANIFEST_FORMAT
    manifest["files"] = [file_entry(member) for member in members]
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def build_zip(facts: dict[str, Any], members: list[Member], day: date) -> bytes:
    """The ZIP of `members` and their manifest, reproducible for the same inputs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member in members:
            archive.writestr(_info(member.name, day), member.data, compresslevel=6)
        archive.writestr(_info(MANIFEST_NAME, day), manifest_bytes(facts, members), compresslevel=6)
    return out.getvalue()


@dataclass(frozen=True)
class Verification:
    """What `verify_zip` found: the manifest (if readable) and every problem."""

    manifest: dict[str, Any] | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def verify_zip(data: bytes) -> Verification:
    """Check a bundle ZIP: readable, CRCs intact, and every file listed in the manifest
    present with the SHA-256 and size the manifest gives, and nothing else besides."""
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        return Verification(None, [f"not a readable ZIP file: {error}"])
    with archive:
        names = archive.namelist()
        if len(set(names)) != len(names):
            problems.append("the ZIP holds two files with the same name")
        try:
            manifest = json.loads(archive.read(MANIFEST_NAME))
        except KeyError:
            return Verification(None, [f"{MANIFEST_NAME} is missing"])
        except (zipfile.BadZipFile, zlib.error, ValueError, UnicodeDecodeError) as error:
            return Verification(None, [f"{MANIFEST_NAME} cannot be read: {error}"])
        files = manifest.get("files") if isinstance(manifest, dict) else None
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, list):
            return Verification(None, [f"{MANIFEST_NAME} is not a bundle manifest"])
        listed = set()
        for entry in files:
            name = str(entry.get("name"))
            listed.add(name)
            try:
                content = archive.read(name)
            except KeyError:
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            except (zipfile.BadZipFile, zlib.error) as error:  # damaged inside the ZIP
                problems.append(f"{name}: damaged ({error})")
                continue
            if len(content) != entry.get("size"):
                problems.append(f"{name}: size {len(content)}, manifest says {entry.get('size')}")
            if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
                problems.append(f"{name}: SHA-256 does not match the manifest")
        for name in names:
            if name != MANIFEST_NAME and name not in listed:
                problems.append(f"{name}: in the ZIP but not in the manifest")
    return Verification(manifest, problems)
