"""Consistent backups of the database and the evidence store, and restoring them.

A backup is a directory (created owner-only; it holds personal data):

    PATH/
      manifest.json        what was copied: schema revision, rows per table, audit chain
                           heads, evidence file count, when
      database.sqlite3     SQLite: a self-contained copy made with the online backup API
      database.pgdump      PostgreSQL: `pg_dump --format=custom` of one snapshot
      evidence/ab/ab…      the evidence store, the same content-addressed layout

The database is copied first and the evidence store after it. Evidence files are only
ever added, and a file is stored before the row naming it commits, so every file the
copied database refers to is in the copy (newer files may be too; they are harmless).

This suits a single SQLite server and small PostgreSQL installations. In production on
PostgreSQL the database's own tools (pg_dump schedules, pg_basebackup with WAL archiving
for point-in-time recovery) are the backup; this command is a convenience over pg_dump.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess  # noqa: S404 - runs pg_dump/pg_restore with argument lists, no shell
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from licensing.audit.services import VerifyResult, verify_chains
from licensing.db import utcnow
from licensing.evidence.store import Backend, DirectoryStore, atomic_file

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
EVIDENCE = "evidence"
FORMAT_VERSION = 1
# A restore goes only into a database without any of these rows.
GUARDED_TABLES = ("premises", "users", "audit_events")

_HEX64 = re.compile(r"[0-9a-f]{64}")


class MaintenanceError(RuntimeError):
    """A backup or restore that cannot go ahead; the message says why, for a person."""


# ---- what a database holds ---------------------------------------------------------


def database_kind(database_url: str) -> str:
    """ "sqlite" or "postgresql" (anything else is refused)."""
    backend = make_url(database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise MaintenanceError(f"backups support SQLite and PostgreSQL, not {backend}")
    return backend


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def database_facts(conn: Connection) -> dict[str, Any]:
    """Schema revision, rows per table and each audit chain's head, read on `conn` (so
    within its transaction's snapshot)."""
    tables = sorted(inspect(conn).get_table_names())
    counts = {
        # Table names come from the database's own catalogue, quoted.
        table: int(conn.execute(text(f"SELECT count(*) FROM {_quote(conn, table)}")).scalar_one())  # noqa: S608  # nosec B608
        for table in tables
    }
    revision = None
    if "alembic_version" in tables:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    heads: dict[str, dict[str, Any]] = {}
    if "audit_events" in tables:
        rows = conn.execute(
            text(
                "SELECT e.chain, e.seq, e.content_hash FROM audit_events e "
                "JOIN (SELECT chain, max(seq) AS seq FROM audit_events GROUP BY chain) h "
                "ON h.chain = e.chain AND h.seq = e.seq ORDER BY e.chain"
            )
        )
        heads = {row.chain: {"seq": row.seq, "hash": row.content_hash} for row in rows}
    return {"schema_revision": revision, "row_counts": counts, "audit_chain_heads": heads}


def guarded_rows(database_url: str) -> dict[str, int]:
    """Rows in the tables a restore must find empty (missing tables count as empty)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {
                table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608 (fixed names)  # nosec B608
                for table in GUARDED_TABLES
                if table in present
            }
    except Exception as error:  # any failure to connect is reported as it is
        raise MaintenanceError(f"cannot open the target database: {error}") from error
    finally:
        engine.dispose()


def verify_database(database_url: str) -> VerifyResult:
    """`licensing audit verify` on the database at `database_url`."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return verify_chains(session)
    finally:
        engine.dispose()


# ---- the evidence store --------------------------------------------------------------


def _evidence_files(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return
    for sub in sorted(directory.iterdir()):
        if not sub.is_dir() or len(sub.name) != 2:
            continue
        for path in sorted(sub.iterdir()):
            # Skips the store's half-written ".incoming-" files and anything foreign.
            if path.is_file() and _HEX64.fullmatch(path.name) and path.name[:2] == sub.name:
                yield path


def _copy_checked(source: Path, target: Path) -> bool:
    """Copy a file, hashing it on the way; True when it matches its name (its hash)."""
    digest = hashlib.sha256()
    with source.open("rb") as src, atomic_file(target) as out:
        while chunk := src.read(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest() == source.name


@dataclass
class EvidenceCopy:
    """What copying an evidence store did."""

    files: int = 0
    bytes: int = 0
    already_present: int = 0
    damaged: list[str] = field(default_factory=list)


def copy_evidence(source: Path, target: Path) -> EvidenceCopy:
    """Copy every stored file from one evidence store to another, checking each against
    its hash. Files already in the target are left alone (same name, same content)."""
    result = EvidenceCopy()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in _evidence_files(source):
        destination = target / path.parent.name / path.name
        if destination.exists():
            result.already_present += 1
            continue
        destination.parent.mkdir(mode=0o700, exist_ok=True)
        if not _copy_checked(path, destination):
            # Copied all the same (it may be the only copy left) but named in the report.
            result.damaged.append(path.name)
        result.files += 1
        result.bytes += path.stat().st_size
    return result


def export_evidence(source: Backend, target: Path) -> EvidenceCopy:
    """Copy every file of a store that is not a directory (an S3 bucket) into a backup's
    evidence directory, checking each against its hash: the same layout `copy_evidence`
    makes, so a backup is restored the same way whichever store it came from."""
    result = EvidenceCopy()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    copy = DirectoryStore(target)  # written as the directory store writes its files
    for digest in source.digests():
        if copy.has(digest):
            result.already_present += 1
            continue
        data = source.read(digest)
        if data is None:  # deleted (by retention) since it was listed
            continue
        copy.write(digest, data)
        if hashlib.sha256(data).hexdigest() != digest:
            result.damaged.append(digest)  # kept all the same: it may be the only copy
        result.files += 1
        result.bytes += len(data)
    return result


def import_evidence(source: Path, target: Backend) -> EvidenceCopy:
    """Put every file of a backup's evidence directory into a store that is not a
    directory (an S3 bucket). A file that no longer matches its hash is named in the
    report and not put: a bucket checks what it stores against its name."""
    result = EvidenceCopy()
    for path in _evidence_files(source):
        digest = path.name
        if target.has(digest):
            result.already_present += 1
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            result.damaged.append(digest)
            continue
        target.write(digest, data)
        result.files += 1
        result.bytes += len(data)
    return result


# ---- PostgreSQL tools ------------------------------------------------------------------


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URL without the password, and an environment carrying it (so
    it never shows in the process list)."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MaintenanceError(
            f"{name} is not on PATH: install the PostgreSQL client tools "
            f"(Debian: apt-get install postgresql-client) matching the server's version"
        )
    return found


def _run(arguments: list[str], env: dict[str, str]) -> None:
    completed = subprocess.run(  # noqa: S603 - fixed tool, argument list, no shell
        arguments, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        tool = Path(arguments[0]).name
        raise MaintenanceError(f"{tool} failed: {completed.stderr.strip() or completed.stdout}")


# ---- backup --------------------------------------------------------------------------


def _backup_sqlite(database_url: str, target: Path) -> dict[str, Any]:
    source_path = make_url(database_url).database
    if not source_path or source_path == ":memory:":
        raise MaintenanceError("an in-memory SQLite database cannot be backed up")
    if not Path(source_path).exists():
        raise MaintenanceError(f"the database file {source_path} does not exist")
    # The online backup API copies a consistent snapshot while others read and write.
    source = sqlite3.connect(source_path, timeout=30)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
        # One self-contained file: no -wal beside it.
        destination.execute("PRAGMA journal_mode=DELETE")
    finally:
        destination.close()
        source.close()
    os.chmod(target, 0o600)
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as conn:
            return database_facts(conn)
    finally:
        engine.dispose()


def _backup_postgres(database_url: str, target: Path) -> dict[str, Any]:
    pg_dump = _tool("pg_dump")
    conninfo, env = _libpq(database_url)
    engine = create_engine(database_url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn, conn.begin():
            # pg_dump reads the snapshot this transaction exported, so the facts in the
            # manifest describe exactly the rows in the dump.
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = database_facts(conn)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    f"--dbname={conninfo}",
                ],
                env,
            )
    finally:
        engine.dispose()
    os.chmod(target, 0o600)
    return facts


def create_backup(
    database_url: str, evidence_dir: Path | Backend, path: Path, *, force: bool = False
) -> dict[str, Any]:
    """Back up the database and the evidence store (a directory, or a store such as an S3
    bucket) into the directory `path` and return the manifest. The backup is assembled
    beside `path` and renamed into place, so `path` is either the previous content or a
    complete backup."""
    kind = database_kind(database_url)
    path = path.absolute()
    if path.exists() and not force:
        raise MaintenanceError(f"{path} already exists; use --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.incoming-"))
    try:
        os.chmod(work, 0o700)
        started = utcnow()
        if kind == "sqlite":
            facts = _backup_sqlite(database_url, work / SQLITE_FILE)
            database_file = SQLITE_FILE
        else:
            facts = _backup_postgres(database_url, work / POSTGRES_FILE)
            database_file = POSTGRES_FILE
        evidence = (
            copy_evidence(evidence_dir, work / EVIDENCE)
            if isinstance(evidence_dir, Path)
            else export_evidence(evidence_dir, work / EVIDENCE)
        )
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": started.isoformat(),
            "database": kind,
            "database_file": database_file,
            **facts,
            "evidence": {
                "files": evidence.files,
                "bytes": evidence.bytes,
                "damaged": evidence.damaged,
            },
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.chmod(work / MANIFEST, 0o600)
        if path.exists():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        os.replace(work, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


# ---- restore ---------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the backup at `path`, checked for the files it names."""
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise MaintenanceError(f"{path} is not a backup: it has no {MANIFEST}") from None
    except json.JSONDecodeError as error:
        raise MaintenanceError(f"{path / MANIFEST} is not valid JSON: {error}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise MaintenanceError(f"unknown backup format {manifest.get('format')!r}")
    if manifest.get("database_file") not in (SQLITE_FILE, POSTGRES_FILE):
        raise MaintenanceError("the manifest names no database file")
    if not (path / manifest["database_file"]).is_file():
        raise MaintenanceError(f"{path / manifest['database_file']} is missing")
    return manifest


@dataclass
class RestoreResult:
    """What a restore did and what the restored database holds."""

    manifest: dict[str, Any]
    facts: dict[str, Any]
    evidence: EvidenceCopy
    verify: VerifyResult

    @property
    def count_mismatches(self) -> dict[str, tuple[int, int | None]]:
        """Tables whose restored row count differs from the manifest: (expected, found)."""
        expected: dict[str, int] = self.manifest.get("row_counts", {})
        found: dict[str, int] = self.facts["row_counts"]
        return {
            table: (count, found.get(table))
            for table, count in expected.items()
            if found.get(table) != count
        }

    @property
    def ok(self) -> bool:
        """The audit trail verifies and every table holds the rows the backup held."""
        return self.verify.ok and not self.count_mismatches and not self.evidence.damaged


def _restore_sqlite(backup_file: Path, database_url: str) -> None:
    target = make_url(database_url).database
    if not target or target == ":memory:":
        raise MaintenanceError("cannot restore into an in-memory SQLite database")
    target_path = Path(target)
    if not target_path.exists():
        target_path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target_path.parent, prefix=".restoring-")
        os.close(handle)
        try:
            shutil.copyfile(backup_file, temporary)
            os.chmod(temporary, 0o600)
            os.replace(temporary, target_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return
    # The target exists (checked empty): the backup API in reverse replaces its pages
    # under SQLite's own locks, so connections left open see the restored database.
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    destination = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()


def _restore_postgres(backup_file: Path, database_url: str) -> None:
    pg_restore = _tool("pg_restore")
    conninfo, env = _libpq(database_url)
    # The target holds no rows (checked), so --clean only drops an empty schema (one
    # made by `licensing db upgrade`, say) before the backup's own is created. One
    # transaction: any error leaves the target as it was.
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={conninfo}",
            str(backup_file),
        ],
        env,
    )


def restore_backup(path: Path, database_url: str, evidence_dir: Path | Backend) -> RestoreResult:
    """Restore the backup at `path` into the empty database at `database_url` and its
    evidence files into `evidence_dir` (a directory, or a store such as an S3 bucket),
    then verify the audit trail and the row counts.

    Refused when the target holds any premises, users or audit events: a restore never
    overwrites data. Stop the app (and the scheduler) while restoring."""
    manifest = read_manifest(path)
    kind = database_kind(database_url)
    if manifest["database"] != kind:
        raise MaintenanceError(
            f"this is a {manifest['database']} backup; the target database is {kind}"
        )
    if kind == "sqlite":
        target = make_url(database_url).database
        present = guarded_rows(database_url) if target and Path(target).exists() else {}
    else:
        present = guarded_rows(database_url)
    busy = {table: n for table, n in present.items() if n}
    if busy:
        listed = ", ".join(f"{n} rows in {table}" for table, n in sorted(busy.items()))
        raise MaintenanceError(
            f"the target database is not empty ({listed}); a restore only goes into an "
            f"empty database. Nothing was changed."
        )
    backup_file = path / manifest["database_file"]
    if kind == "sqlite":
        _restore_sqlite(backup_file, database_url)
    else:
        _restore_postgres(backup_file, database_url)
    evidence = (
        copy_evidence(path / EVIDENCE, evidence_dir)
        if isinstance(evidence_dir, Path)
        else import_evidence(path / EVIDENCE, evidence_dir)
    )
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            facts = database_facts(conn)
    finally:
        engine.dispose()
    return RestoreResult(manifest, facts, evidence, verify_database(database_url))
