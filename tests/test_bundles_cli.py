"""`licensing bundles verify`: a good ZIP passes; a changed byte in any file, a missing or
extra file, or a ZIP rebuilt around an edited file fails with exit status 1."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from licensing.evidence import services as bundles
from licensing.evidence import store
from licensing.evidence.packaging import MANIFEST_NAME, Member, build_zip


def _verify(app: Flask, path: Path, *extra: str) -> Any:
    return app.test_cli_runner().invoke(args=["bundles", "verify", str(path), *extra])


@pytest.fixture
def issued_zip(session: Session, world: dict[str, Any], tmp_path: Path) -> tuple[Path, Any]:
    """The shared ZIP of an issued bundle of the Crown, saved as a file."""
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    path = tmp_path / f"{bundle.reference}-v1-shared.zip"
    path.write_bytes(store.get(bundle.shared_zip_sha256))
    return path, bundle


def test_an_untouched_bundle_zip_verifies(app: Flask, issued_zip: tuple[Path, Any]) -> None:
    path, bundle = issued_zip
    result = _verify(app, path)
    assert result.exit_code == 0, result.output
    assert f"OK: {path.name} is bundle {bundle.reference} v1 (shared copy)" in result.output
    assert bundle.audit_head_hash in result.output


def test_a_changed_byte_in_any_file_fails(
    app: Flask, issued_zip: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = issued_zip
    data = path.read_bytes()
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert {info.filename for info in infos} >= {MANIFEST_NAME}
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        tampered = bytearray(data)
        tampered[start + info.compress_size // 3] ^= 0x20
        target = tmp_path / "tampered.zip"
        target.write_bytes(bytes(tampered))
        result = _verify(app, target)
        assert result.exit_code == 1, (info.filename, result.output)
        assert "FAILED" in result.output


def _rezip(path: Path, change: Any) -> bytes:
    """A new ZIP with the same files (changed by `change`) and a manifest made to match
    them, as a forger with the tools would make it."""
    source = zipfile.ZipFile(path)
    manifest = json.loads(source.read(MANIFEST_NAME))
    members = [
        Member(name, source.read(name)) for name in source.namelist() if name != MANIFEST_NAME
    ]
    members = change(members)
    facts = {k: v for k, v in manifest.items() if k not in ("files", "format")}
    return build_zip(facts, members, date(2026, 1, 1))


def test_a_consistent_forgery_fails_against_the_record_but_not_alone(
    app: Flask, issued_zip: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = issued_zip

    def swap_pdf(members: list[Member]) -> list[Member]:
        return [
            Member(m.name, m.data + b"%edited\n") if m.name.endswith(".pdf") else m for m in members
        ]

    forged = tmp_path / "forged.zip"
    forged.write_bytes(_rezip(path, swap_pdf))
    against_record = _verify(app, forged)
    assert against_record.exit_code == 1
    assert "differs from the one on record" in against_record.output
    # Someone without the database can still check internal consistency, which holds.
    assert _verify(app, forged, "--no-database").exit_code == 0


def test_missing_and_extra_files_fail(
    app: Flask, issued_zip: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = issued_zip
    source = zipfile.ZipFile(path)
    dropped = tmp_path / "dropped.zip"
    with zipfile.ZipFile(dropped, "w") as out:
        for name in source.namelist():
            if not name.endswith(".pdf"):
                out.writestr(name, source.read(name))
    result = _verify(app, dropped, "--no-database")
    assert result.exit_code == 1 and "listed in the manifest but missing" in result.output
    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(extra, "w") as out:
        for name in source.namelist():
            out.writestr(name, source.read(name))
        out.writestr("attachments/smuggled.pdf", b"%PDF-1.4 smuggled")
    result = _verify(app, extra, "--no-database")
    assert result.exit_code == 1 and "not in the manifest" in result.output


def test_not_a_zip_fails(app: Flask, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip file")
    result = _verify(app, junk)
    assert result.exit_code == 1 and "not a readable ZIP" in result.output
