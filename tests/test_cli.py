"""The `licensing` command line, through Flask's CLI runner and as the installed script."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import create_engine, func, inspect, select

from licensing import create_app
from licensing.audit.models import AuditEvent
from licensing.auth.models import User
from licensing.auth.services import authenticate
from licensing.db import get_session
from licensing.demo import DEMO_PASSWORD, USERS
from licensing.premises.models import LicensingAuthority, Premises, RegisterImportRun

FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "a-long-enough-password"


def run(app: Flask, *args: str, input: str | None = None) -> Result:  # noqa: A002
    return app.test_cli_runner().invoke(args=list(args), input=input)


def count(app: Flask, model: object, *where: object) -> int:
    with app.app_context():
        session = get_session()
        value = session.scalar(select(func.count()).select_from(model).where(*where))
        session.close()
        return int(value or 0)


def user(app: Flask, email: str) -> User | None:
    with app.app_context():
        found = get_session().scalar(select(User).where(User.email == email))
        return found


# ---- db upgrade -----------------------------------------------------------------------


def test_db_upgrade_migrates_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = create_app({"ENV_NAME": "testing", "DATABASE_URL": url})
    try:
        result = run(fresh, "db", "upgrade")
    finally:
        fresh.extensions["db_engine"].dispose()

    assert result.exit_code == 0, result.output
    assert "Database is up to date." in result.stdout
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"premises", "audit_events", "users", "alembic_version"} <= tables


def test_db_upgrade_again_is_a_no_op(app: Flask) -> None:
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Database is up to date." in result.stdout


# ---- authorities ------------------------------------------------------------------------


def test_authorities_create(app: Flask) -> None:
    result = run(app, "authorities", "create", "man", "Manchester City Council")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Created authority MAN: Manchester City Council"
    assert count(app, LicensingAuthority, LicensingAuthority.code == "MAN") == 1


def test_authorities_create_twice_is_refused(app: Flask) -> None:
    assert run(app, "authorities", "create", "MAN", "Manchester").exit_code == 0

    result = run(app, "authorities", "create", "MAN", "Manchester again")

    assert result.exit_code == 1
    assert "Error: An authority with code MAN already exists" in result.stderr
    assert count(app, LicensingAuthority) == 1


# ---- users --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["officer", "supervisor", "admin"])
def test_users_create_police_roles_with_password_from_stdin(app: Flask, role: str) -> None:
    email = f"{role}@police.example"
    result = run(app, "users", "create", email.upper(), "--role", role, input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Created {role} {email}"
    created = user(app, email)
    assert created is not None
    assert (created.role, created.authority_id) == (role, None)
    assert PASSWORD not in result.output
    with app.app_context():
        assert authenticate(get_session(), email, PASSWORD) is not None
        assert authenticate(get_session(), email, PASSWORD + "x") is None


def test_users_create_council_user_with_authority(app: Flask) -> None:
    run(app, "authorities", "create", "MAN", "Manchester City Council")

    result = run(
        app,
        "users",
        "create",
        "licensing@manchester.example",
        "--role",
        "council",
        "--authority",
        "man",
        "--name",
        "Manchester licensing",
        input=PASSWORD + "\r\n",
    )

    assert result.exit_code == 0, result.output
    created = user(app, "licensing@manchester.example")
    assert created is not None
    assert created.role == "council"
    assert created.name == "Manchester licensing"
    with app.app_context():
        man = get_session().scalar(
            select(LicensingAuthority).where(LicensingAuthority.code == "MAN")
        )
        assert created.authority_id == man.id
        # The CRLF of a Windows pipe is not part of the password.
        assert authenticate(get_session(), "licensing@manchester.example", PASSWORD) is not None


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (
            ["council@x.example", "--role", "council"],
            PASSWORD,
            "A council user needs --authority CODE",
        ),
        (
            ["council@x.example", "--role", "council", "--authority", "NOPE"],
            PASSWORD,
            "No licensing authority with code 'NOPE'",
        ),
        (["short@x.example", "--role", "officer"], "too-short", "at least 12 characters"),
        (["empty@x.example", "--role", "officer"], "", "at least 12 characters"),
        (["not-an-email", "--role", "officer"], PASSWORD, "Enter a valid email address"),
    ],
)
def test_users_create_refusals(app: Flask, args: list[str], password: str, message: str) -> None:
    result = run(app, "users", "create", *args, input=password + "\n")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert result.stdout == ""
    assert count(app, User) == 0


def test_users_create_unknown_role_is_refused_by_click(app: Flask) -> None:
    result = run(app, "users", "create", "a@x.example", "--role", "chief", input=PASSWORD + "\n")

    assert result.exit_code == 2
    assert "'chief' is not one of" in result.stderr
    assert count(app, User) == 0


def test_users_create_duplicate_email_is_refused(app: Flask) -> None:
    first = run(
        app, "users", "create", "pc@police.example", "--role", "officer", input=PASSWORD + "\n"
    )
    assert first.exit_code == 0, first.output

    result = run(
        app, "users", "create", "PC@police.example", "--role", "admin", input=PASSWORD + "\n"
    )

    assert result.exit_code == 1
    assert "Error: A user with email pc@police.example already exists" in result.stderr
    assert count(app, User) == 1
    assert user(app, "pc@police.example").role == "officer"


# ---- tokens ---------------------------------------------------------------------------------


def test_tokens_create_prints_only_a_working_token(app: Flask) -> None:
    run(app, "users", "create", "pc@police.example", "--role", "officer", input=PASSWORD + "\n")

    result = run(app, "tokens", "create", "pc@police.example", "--label", "tests")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert token.startswith("lic_")
    assert token == token.strip() and len(token) > 20
    client = app.test_client()
    ok = client.get("/api/v1/premises", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.get_json()["items"] == []
    wrong = client.get("/api/v1/premises", headers={"Authorization": f"Bearer {token}x"})
    assert wrong.status_code == 401
    assert client.get("/api/v1/premises").status_code == 401


def test_tokens_create_for_unknown_user_is_refused(app: Flask) -> None:
    result = run(app, "tokens", "create", "nobody@police.example")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: No user with email 'nobody@police.example'" in result.stderr


# ---- premises import ------------------------------------------------------------------------


def _counts(stdout: str) -> dict[str, int]:
    pairs = [line.split() for line in stdout.splitlines()]
    return {name: int(number) for name, number in pairs}


def test_premises_import_prints_the_counts(app: Flask, tmp_path: Path) -> None:
    run(app, "authorities", "create", "MAN", "Manchester City Council")
    register = FIXTURES / "register-manchester-style.csv"
    out = tmp_path / "rejected.csv"

    first = run(
        app, "premises", "import", str(register), "--authority", "man", "--rejected-out", str(out)
    )

    assert first.exit_code == 0, first.output
    assert _counts(first.stdout) == {
        "read": 7,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 4,
        "rejected": 0,
    }
    assert not out.exists()  # nothing rejected, nothing written
    assert count(app, Premises) == 3

    second = run(app, "premises", "import", str(register), "--authority", "MAN")

    assert second.exit_code == 0, second.output
    assert _counts(second.stdout)["unchanged"] == 3
    assert _counts(second.stdout)["created"] == 0
    assert count(app, RegisterImportRun) == 2


def test_premises_import_writes_rejected_rows(app: Flask, tmp_path: Path) -> None:
    run(app, "authorities", "create", "MAN", "Manchester City Council")
    register = tmp_path / "register.csv"
    register.write_bytes(
        b"CASEREFERENCE,PREMISESNAME,POSTCODE\r\n"
        b"1,The Caf\xe9,M1 1AA\r\n"
        b',=HYPERLINK("http://x.example"),M1 1AB\r\n'
        b"-2.24\r\n"
        b",,\r\n"
    )
    out = tmp_path / "rejected.csv"

    result = run(
        app, "premises", "import", str(register), "--authority", "MAN", "--rejected-out", str(out)
    )

    assert result.exit_code == 0, result.output
    assert _counts(result.stdout) == {
        "read": 4,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "skipped": 1,
        "rejected": 2,
    }
    assert "line 3: CASEREFERENCE (licence number) is empty" in result.stderr
    assert "line 4: the row has 1 fields; the header has 3" in result.stderr
    assert f"Rejected rows written to {out}" in result.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["line_number", "reason", "row"]
    assert [(r[0], r[2]) for r in rows[1:]] == [
        ("3", ',"=HYPERLINK(""http://x.example"")",M1 1AB'),
        ("4", "-2.24"),
    ]


def test_premises_import_of_a_file_that_is_not_a_register(app: Flask, tmp_path: Path) -> None:
    run(app, "authorities", "create", "MAN", "Manchester City Council")
    wrong = tmp_path / "crimes.csv"
    wrong.write_text("Crime ID,Month,Location\r\nabc,2019-03,On or near Nightclub\r\n")

    result = run(app, "premises", "import", str(wrong), "--authority", "MAN")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        "Error: This is not a PremisesLicences register: "
        "the header lacks CASEREFERENCE, PREMISESNAME" in result.stderr
    )
    assert count(app, RegisterImportRun) == 0
    assert count(app, Premises) == 0


def test_premises_import_needs_a_known_authority(app: Flask) -> None:
    result = run(
        app, "premises", "import", str(FIXTURES / "register-geocoded.csv"), "--authority", "XYZ"
    )

    assert result.exit_code == 1
    assert "Error: No licensing authority with code 'XYZ'" in result.stderr
    assert count(app, Premises) == 0


def test_premises_import_of_a_missing_file(app: Flask, tmp_path: Path) -> None:
    result = run(app, "premises", "import", str(tmp_path / "nope.csv"), "--authority", "MAN")

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# ---- audit verify ---------------------------------------------------------------------------


def test_audit_verify_after_an_import(app: Flask) -> None:
    run(app, "authorities", "create", "MAN", "Manchester City Council")
    run(app, "premises", "import", str(FIXTURES / "register-geocoded.csv"), "--authority", "MAN")

    result = run(app, "audit", "verify")

    assert result.exit_code == 0, result.output
    # authority_created + register_imported on the system chain; one event per premises.
    assert result.stdout.strip() == "OK: 5 events in 4 chains verified"


def test_audit_verify_on_an_empty_trail(app: Flask) -> None:
    result = run(app, "audit", "verify")
    assert result.exit_code == 0
    assert result.stdout.strip() == "OK: 0 events in 0 chains verified"


# ---- demo load -------------------------------------------------------------------------------


def _states(app: Flask) -> Counter[str]:
    with app.app_context():
        return Counter(get_session().scalars(select(Premises.state)).all())


def test_demo_load_every_state_and_role(app: Flask) -> None:
    result = run(app, "demo", "load")

    assert result.exit_code == 0, result.output
    assert "Loaded 50 demo premises." in result.stdout
    assert DEMO_PASSWORD in result.stdout
    states = _states(app)
    assert sum(states.values()) == 50
    assert set(states) == {"monitored", "warned", "review", "action"}
    with app.app_context():
        roles = set(get_session().scalars(select(User.role)).all())
    assert roles == {"officer", "supervisor", "council", "admin"}
    assert count(app, User) == len(USERS)
    for email, _name, _role, _authority in USERS:
        with app.app_context():
            assert authenticate(get_session(), email, DEMO_PASSWORD) is not None
    # Premises have histories beyond registration.
    assert count(app, AuditEvent, AuditEvent.event == "warn") > 0
    verify = run(app, "audit", "verify")
    assert verify.exit_code == 0
    assert verify.stdout.startswith("OK: ")


def test_demo_load_if_empty_twice_is_idempotent(app: Flask) -> None:
    first = run(app, "demo", "load", "--if-empty", "--premises", "12")
    assert first.exit_code == 0, first.output
    assert "Loaded 12 demo premises." in first.stdout
    events = count(app, AuditEvent)
    states = _states(app)

    second = run(app, "demo", "load", "--if-empty", "--premises", "12")

    assert second.exit_code == 0, second.output
    assert "Demo data already loaded." in second.stdout
    assert count(app, AuditEvent) == events
    assert _states(app) == states
    assert count(app, User) == len(USERS)
    assert run(app, "audit", "verify").exit_code == 0


def test_demo_load_refuses_a_database_with_premises(app: Flask) -> None:
    assert run(app, "demo", "load", "--premises", "6").exit_code == 0

    again = run(app, "demo", "load", "--premises", "6")

    assert again.exit_code == 1
    assert "The register is not empty" in again.stderr
    assert count(app, Premises) == 6


def test_demo_load_keeps_an_admin_created_first(app: Flask) -> None:
    created = run(
        app, "users", "create", "admin@police.example", "--role", "admin", input=PASSWORD + "\n"
    )
    assert created.exit_code == 0
    run(app, "authorities", "create", "LIV", "Liverpool (created by hand)")

    result = run(app, "demo", "load", "--premises", "6")

    assert result.exit_code == 0, result.output
    assert count(app, Premises) == 6
    assert count(app, User) == len(USERS)
    with app.app_context():
        session = get_session()
        assert authenticate(session, "admin@police.example", PASSWORD) is not None
        names = set(session.scalars(select(LicensingAuthority.name)).all())
    assert "Liverpool (created by hand)" in names
    assert run(app, "audit", "verify").exit_code == 0


# ---- the installed console script -----------------------------------------------------------


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "licensing"
    if script.exists():
        return [str(script)]
    found = shutil.which("licensing")
    assert found, "the licensing console script is not installed (pip install -e .)"
    return [found]


def test_console_script_entry_point(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'script.db'}",
        "LICENSING_ENV": "development",
    }
    env.pop("FLASK_APP", None)

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [*_console_script(), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    helped = script("--help")
    assert helped.returncode == 0, helped.stderr
    for group in ("db", "authorities", "users", "tokens", "premises", "audit", "demo"):
        assert f"  {group} " in helped.stdout

    upgraded = script("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Database is up to date." in upgraded.stdout

    created = script("authorities", "create", "MAN", "Manchester City Council")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created authority MAN: Manchester City Council"

    engine = create_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        codes = conn.execute(select(LicensingAuthority.code)).scalars().all()
    engine.dispose()
    assert codes == ["MAN"]

    again = script("authorities", "create", "MAN", "Manchester City Council")
    assert again.returncode == 1
    assert "Error: An authority with code MAN already exists" in again.stderr


def test_rejected_rows_go_under_instance_readable_by_the_owner_only(
    app: Flask, tmp_path: Path
) -> None:
    """They can hold personal data: never into the current directory by default."""
    import os
    import stat

    app.instance_path = str(tmp_path / "instance")
    run(app, "authorities", "create", "MAN", "Manchester City Council")
    register = tmp_path / "register.csv"
    register.write_bytes(b"CASEREFERENCE,PREMISESNAME\r\n,Nameless Bar\r\n")
    result = run(app, "premises", "import", str(register), "--authority", "MAN")
    assert result.exit_code == 0, result.output
    [written] = (tmp_path / "instance" / "rejected").iterdir()
    assert written.name.endswith("-rejected.csv")
    assert f"Rejected rows written to {written}" in result.stderr
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
    assert "Nameless Bar" in written.read_text(encoding="utf-8")
