"""`licensing backup` and `licensing restore`: a consistent copy, restored whole."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from licensing import create_app
from licensing.audit.models import AuditEvent
from licensing.audit.services import append_event
from licensing.cli import upgrade_database
from licensing.db import make_engine
from licensing.evidence import store
from licensing.evidence.models import Attachment
from licensing.incidents.models import Incident, IncidentPerson
from licensing.maintenance.backup import (
    MaintenanceError,
    create_backup,
    database_facts,
    verify_database,
)
from licensing.premises.models import Premises
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL

PG_TOOLS = bool(shutil.which("pg_dump") and shutil.which("pg_restore"))
needs_pg_tools = pytest.mark.skipif(
    ON_POSTGRES and not PG_TOOLS,
    reason="pg_dump/pg_restore are not on PATH (apt-get install postgresql-client)",
)
PDF = b"%PDF-1.4\n% a witness statement, for the backup test\n%%EOF\n"


def run(app: Flask, *args: str) -> Result:
    """Invoke a command on `app` (its own app context: the test's may be another app's)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def facts(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return database_facts(conn)
    finally:
        engine.dispose()


@contextmanager
def empty_target(tmp_path: Path, migrated: bool) -> Iterator[str]:
    """A database to restore into, of the kind this run tests: a new SQLite file (absent,
    or migrated and empty), or a new PostgreSQL database (blank, or migrated and empty)
    that is dropped afterwards."""
    if not ON_POSTGRES:
        url = f"sqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.db'}"
        if migrated:
            upgrade_database(url)
        yield url
        return
    server = make_url(TEST_DATABASE_URL)
    name = f"licensing_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            upgrade_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def app_on(url: str, evidence_dir: Path) -> Iterator[Flask]:
    application = create_app(
        {"ENV_NAME": "testing", "DATABASE_URL": url, "EVIDENCE_DIR": str(evidence_dir)}
    )
    try:
        yield application
    finally:
        application.extensions["db_engine"].dispose()


@pytest.fixture
def populated(session: Session, world: dict[str, Any]) -> dict[str, Any]:
    """The world's premises, users and audit events, plus an incident with a victim and
    a witness, an attachment in the evidence store, and an event with personal values."""
    incident = Incident(
        source="rms",
        source_ref="RMS-BACKUP-1",
        counted_at=datetime.now(UTC) - timedelta(days=3),
        category="Public order",
        description="Fight in the beer garden",
    )
    session.add(incident)
    session.flush()
    session.add_all(
        [
            IncidentPerson(incident_id=incident.id, role="victim", name="Vera Victim"),
            IncidentPerson(
                incident_id=incident.id,
                role="witness",
                name="Walter Witness",
                phone="07700 900001",
                email="walter@example.org",
                address="1 Test Street",
            ),
        ]
    )
    digest = store.put(PDF)
    session.add(
        Attachment(
            incident_id=incident.id,
            sha256=digest,
            size=len(PDF),
            media_type="application/pdf",
            original_name="statement.pdf",
            holds_personal_data=True,
        )
    )
    append_event(
        session,
        event="details_changed",
        actor_id=world["officer"].id,
        premises_id=world["premises"].id,
        payload={"fields": ["dps"]},
        personal_values={"dps": ("Old Supervisor", "New Supervisor")},
    )
    session.commit()
    return {"incident_id": incident.id, "digest": digest, **world}


def restored_rows(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with Session(engine) as s:
            return {
                "premises": sorted(s.scalars(select(Premises.name))),
                "people": sorted(
                    (p.role, p.name, p.phone, p.email, p.address)
                    for p in s.scalars(select(IncidentPerson))
                ),
                "hashes": sorted(s.scalars(select(AuditEvent.content_hash))),
            }
    finally:
        engine.dispose()


# ---- backup and restore ---------------------------------------------------------------


@needs_pg_tools
@pytest.mark.parametrize("migrated", [False, True], ids=["blank-target", "migrated-target"])
def test_backup_then_restore_into_an_empty_database_holds_every_row(
    app: Flask, database_url: str, populated: dict[str, Any], tmp_path: Path, migrated: bool
) -> None:
    backup = tmp_path / "backup-1"
    result = run(app, "backup", str(backup))
    assert result.exit_code == 0, result.output
    assert "evidence files 1" in result.output

    database_file = "database.pgdump" if ON_POSTGRES else "database.sqlite3"
    assert sorted(p.name for p in backup.iterdir()) == sorted(
        [database_file, "evidence", "manifest.json"]
    )
    digest = populated["digest"]
    assert (backup / "evidence" / digest[:2] / digest).read_bytes() == PDF
    manifest = json.loads((backup / "manifest.json").read_text())
    source = facts(database_url)
    assert manifest["row_counts"] == source["row_counts"]
    assert manifest["audit_chain_heads"] == source["audit_chain_heads"]
    assert manifest["schema_revision"] == source["schema_revision"] is not None
    assert manifest["row_counts"]["incident_people"] == 2
    assert manifest["evidence"] == {"files": 1, "bytes": len(PDF), "damaged": []}

    with empty_target(tmp_path, migrated) as target, app_on(target, tmp_path / "ev2") as fresh:
        restored = run(fresh, "restore", str(backup))
        assert restored.exit_code == 0, restored.output
        assert "audit verify: OK" in restored.output

        after = facts(target)
        assert after["row_counts"] == source["row_counts"]
        assert after["audit_chain_heads"] == source["audit_chain_heads"]
        assert after["schema_revision"] == source["schema_revision"]
        assert restored_rows(target) == restored_rows(database_url)
        assert (
            "witness",
            "Walter Witness",
            "07700 900001",
            "walter@example.org",
            "1 Test Street",
        ) in restored_rows(target)["people"]
        assert (tmp_path / "ev2" / digest[:2] / digest).read_bytes() == PDF

        verify = run(fresh, "audit", "verify")
        assert verify.exit_code == 0, verify.output
        assert verify.output.startswith("OK")
        # The restored database works: ids carry on after the restored rows.
        with fresh.app_context():
            from licensing.db import get_session

            s = get_session()
            append_event(s, event="restored_check", actor_id=None)
            s.commit()
        assert run(fresh, "audit", "verify").exit_code == 0


@needs_pg_tools
def test_restore_into_a_database_with_rows_is_refused_and_changes_nothing(
    app: Flask, database_url: str, populated: dict[str, Any], tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    assert run(app, "backup", str(backup)).exit_code == 0
    before = facts(database_url)

    with app_on(database_url, tmp_path / "other-evidence") as same_database:
        result = run(same_database, "restore", str(backup))

    assert result.exit_code == 1
    assert "not empty" in result.output
    assert "rows in premises" in result.output
    assert "Nothing was changed" in result.output
    assert facts(database_url) == before
    assert not (tmp_path / "other-evidence").exists() or not any(
        (tmp_path / "other-evidence").iterdir()
    )


def test_restore_has_no_force_option(app: Flask, tmp_path: Path) -> None:
    result = run(app, "restore", "--force", str(tmp_path))
    assert result.exit_code == 2
    assert "No such option" in result.output


@needs_pg_tools
def test_backup_refuses_to_replace_a_path_unless_forced(
    app: Flask, populated: dict[str, Any], tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "keep.txt").write_text("mine")

    refused = run(app, "backup", str(backup))
    assert refused.exit_code == 1
    assert "already exists" in refused.output
    assert (backup / "keep.txt").read_text() == "mine"

    forced = run(app, "backup", "--force", str(backup))
    assert forced.exit_code == 0, forced.output
    assert not (backup / "keep.txt").exists()
    assert (backup / "manifest.json").exists()
    # Nothing half-made is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")) == []


def test_postgres_backup_without_pg_dump_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("licensing.maintenance.backup.shutil.which", lambda _name: None)
    with pytest.raises(MaintenanceError, match="pg_dump is not on PATH"):
        create_backup(
            "postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "ev", tmp_path / "b"
        )
    assert list(tmp_path.iterdir()) == []


@needs_pg_tools
def test_backup_while_another_connection_writes_is_consistent(
    app: Flask, database_url: str, populated: dict[str, Any], tmp_path: Path
) -> None:
    premises_id = populated["premises"].id
    stop = threading.Event()
    written = {"n": 0}
    errors: list[BaseException] = []

    def writer() -> None:
        engine = make_engine(database_url)
        try:
            with Session(engine) as s:
                while not stop.is_set():
                    append_event(s, event="note_added", actor_id=None, premises_id=premises_id)
                    append_event(s, event="note_added", actor_id=None)
                    s.commit()
                    written["n"] += 1
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    manifests = []
    try:
        while written["n"] < 5:
            stop.wait(0.01)
        with app.app_context():
            for n in range(3):
                manifests.append(
                    create_backup(database_url, tmp_path / "evidence", tmp_path / f"backup-{n}")
                )
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert written["n"] > 5

    for n, manifest in enumerate(manifests):
        with empty_target(tmp_path, migrated=False) as target:
            with app_on(target, tmp_path / f"ev-{n}") as fresh:
                restored = run(fresh, "restore", str(tmp_path / f"backup-{n}"))
            assert restored.exit_code == 0, restored.output
            assert verify_database(target).ok
            after = facts(target)
            # The manifest describes exactly the copy: the same snapshot.
            assert after["row_counts"] == manifest["row_counts"]
            assert after["audit_chain_heads"] == manifest["audit_chain_heads"]
