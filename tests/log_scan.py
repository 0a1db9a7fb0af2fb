"""Personal data never reaches the logs: a check over the whole test suite (issue #7).

For the whole session (in each xdist worker alike) a handler on the root logger keeps
the text of every log record (message, exception and stack), with the app's loggers
("licensing", app.logger included) at DEBUG and werkzeug's, SQLAlchemy's, APScheduler's,
Alembic's, Flask-Limiter's and Authlib's at INFO (pytest's own per-test log capture
leaves SQLAlchemy's and Alembic's chatter below WARNING out: it is for the scan). The stderr of the `licensing`
processes the tests start (the scheduler, the CLI) is kept too.

Meanwhile the harness collects every personal value the tests hand the app, without
touching app code: the name, phone, email and address of each person stored on an
incident (a mapper event), every password hashed or checked (argon2), and every bearer
token presented to the API (Flask's request_started signal). At the end of the session
any such value (six characters or more, not a run like "000000") found in the kept text,
in any case and also after URL-decoding, fails the run with exit status 1, naming the
kind of value and the logger, never the value in full; so does any string shaped like a
bearer token. Workers hand their findings to the xdist controller, which fails the run.

The kept text is deduplicated (SQLAlchemy's timing notes are normalised first), and the
values are matched by their first six characters, so the scan costs seconds.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

MIN_LENGTH = 6
# A bearer token, whether or not the test that made it ever presented it.
TOKEN_SHAPE = re.compile(r"lic_[A-Za-z0-9_-]{20,}")
# SQLAlchemy's note of each statement's timing differs every time: normalised, so
# identical statements are kept once.
_SQL_TIMING = re.compile(
    r"^\[(?:generated in|cached since|dialect \S+ does not support caching|no key)[^\]]*\]"
)
LOGGER_LEVELS = {
    "licensing": logging.DEBUG,  # the app's own loggers (app.logger is "licensing")
    "werkzeug": logging.INFO,  # the live servers' request lines
    "sqlalchemy": logging.INFO,  # SQL statements and their parameter notes
    "apscheduler": logging.INFO,
    "alembic": logging.INFO,
    "flask_limiter": logging.INFO,
    "authlib": logging.INFO,
}
SQL_LOGGER = "sqlalchemy.engine"
QUIET_IN_PYTEST = ("sqlalchemy", "alembic")
WORKER_OUTPUT_KEY = "personal_data_in_logs"


@dataclass(frozen=True)
class Finding:
    """A personal value found in log text: what kind, where, and a masked hint."""

    kind: str
    source: str
    hint: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.hint}) in {self.source}"


def mask(value: str) -> str:
    """Enough to recognise a value in a report without repeating it."""
    return f"{value[:2]}… {len(value)} characters"


def worth_scanning(value: str) -> bool:
    """Six characters or more, not a run of one or two characters ("000000"), and not
    text of the app's own code: those could turn up in any log by chance. (Hypothesis
    draws some of the strings it generates from the literals and names in the project's
    source, so a fuzzed victim's email can be "counted", which every SQL log and
    migration holding `incident_counted_at` repeats.)"""
    return (
        len(value) >= MIN_LENGTH
        and len(set(value)) >= 3
        and value.casefold() not in app_source_text()
    )


@functools.cache
def app_source_text() -> str:
    """The app's code and migrations, case-folded: where the SQL, mapper and migration
    logs get their words from."""
    root = Path(__file__).resolve().parent.parent
    files = sorted([*root.glob("licensing/**/*.py"), *root.glob("migrations/**/*.py")])
    return "\n".join(path.read_text(encoding="utf-8").casefold() for path in files)


def not_chatter(record: logging.LogRecord) -> bool:
    """A log filter for pytest's own capture: leaves out what only the scan switched
    on (SQL statements, mapper set-up, migrations below WARNING)."""
    return record.levelno >= logging.WARNING or not record.name.startswith(QUIET_IN_PYTEST)


class PersonalValues:
    """The personal values the tests gave the app, each with its kind."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}

    def add(self, kind: str, value: Any) -> None:
        """Remember a value (text only; blank and short ones are not scanned for)."""
        if isinstance(value, str):
            value = value.strip()
            if worth_scanning(value):
                self.kinds.setdefault(value.casefold(), kind)

    def __len__(self) -> int:
        return len(self.kinds)


class LogText(logging.Handler):
    """Keeps the formatted text of every record (message, exception and stack), once
    per distinct text and source."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        self.texts: dict[tuple[str, str], None] = {}
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's text under its logger's name."""
        try:
            text = self.format(record)
        except Exception:  # a record whose arguments do not format still has its text
            text = f"{record.msg} {record.args!r}"
        self.keep(f"logger {record.name}", text)

    def keep(self, source: str, text: str) -> None:
        """Keep text from a source (a logger, or a process's stderr)."""
        self.records += 1
        if source.startswith(f"logger {SQL_LOGGER}"):
            text = _SQL_TIMING.sub("[timing]", text.split(" ", 1)[-1])
        self.texts[(source, text)] = None

    def items(self) -> Iterator[tuple[str, str]]:
        """(source, text) pairs, each once."""
        return iter(self.texts)


def scan(values: PersonalValues, texts: Iterable[tuple[str, str]]) -> list[Finding]:
    """Every (kind, source) where a personal value, or a token-shaped string, appears in
    the texts: also after URL-decoding, as request lines carry values encoded."""
    by_prefix: dict[str, list[str]] = {}
    for value in values.kinds:
        by_prefix.setdefault(value[:MIN_LENGTH], []).append(value)
    found: dict[tuple[str, str], str] = {}
    for source, text in texts:
        readings = {text}
        if "%" in text or "+" in text:
            readings.add(urllib.parse.unquote_plus(text))
        for reading in readings:
            for match in TOKEN_SHAPE.finditer(reading):
                found.setdefault(("bearer token (by its shape)", source), mask(match.group()))
            folded = reading.casefold()
            for start in range(len(folded) - MIN_LENGTH + 1):
                for value in by_prefix.get(folded[start : start + MIN_LENGTH], ()):
                    if folded.startswith(value, start):
                        found.setdefault((values.kinds[value], source), mask(value))
    return [Finding(kind, source, hint) for (kind, source), hint in sorted(found.items())]


class LogScan:
    """The pytest plugin: installs the capture and the collectors for the session,
    scans at its end, and fails the run on a finding."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.values = PersonalValues()
        self.handler = LogText()
        self.findings: list[Finding] = []
        self.worker_findings: list[Finding] = []
        self.worker_counts: list[dict[str, int]] = []
        self._undo: list[Any] = []
        self._install()

    # ---- installing and removing -------------------------------------------------------

    def _install(self) -> None:
        root = logging.getLogger()
        root.addHandler(self.handler)
        self._undo.append(lambda: root.removeHandler(self.handler))
        for name, level in LOGGER_LEVELS.items():
            logger = logging.getLogger(name)
            previous = logger.level
            if previous == logging.NOTSET or previous > level:
                logger.setLevel(level)
                self._undo.append(
                    lambda logger=logger, previous=previous: logger.setLevel(previous)
                )
        self._collect_people()
        self._collect_passwords()
        self._collect_tokens()
        self._keep_process_stderr()

    def uninstall(self) -> None:
        """Put everything back as it was."""
        while self._undo:
            self._undo.pop()()

    def _collect_people(self) -> None:
        from sqlalchemy import event

        from licensing.incidents.models import IncidentPerson

        def collect(_mapper: Any, _connection: Any, person: IncidentPerson) -> None:
            for field in ("name", "phone", "email", "address"):
                self.values.add(f"{person.role or 'person'}'s {field}", getattr(person, field))

        for name in ("before_insert", "before_update"):
            event.listen(IncidentPerson, name, collect)
            self._undo.append(lambda name=name: event.remove(IncidentPerson, name, collect))

    def _collect_passwords(self) -> None:
        from argon2 import PasswordHasher

        original_hash, original_verify = PasswordHasher.hash, PasswordHasher.verify
        values = self.values

        def hash_(self: PasswordHasher, password: str | bytes, *args: Any, **kwargs: Any) -> str:
            values.add("password", password)
            return original_hash(self, password, *args, **kwargs)

        def verify(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
            values.add("password", password)
            return original_verify(self, hash, password)

        PasswordHasher.hash = hash_  # type: ignore[method-assign]
        PasswordHasher.verify = verify  # type: ignore[method-assign]

        def restore() -> None:
            PasswordHasher.hash = original_hash  # type: ignore[method-assign]
            PasswordHasher.verify = original_verify  # type: ignore[method-assign]

        self._undo.append(restore)

    def _collect_tokens(self) -> None:
        from flask import request, request_started

        def collect(_sender: Any, **_extra: Any) -> None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                self.values.add("bearer token", token)

        request_started.connect(collect, weak=False)
        self._undo.append(lambda: request_started.disconnect(collect))

    def _keep_process_stderr(self) -> None:
        # The processes the tests start (`licensing scheduler tick`, the CLI) log to
        # their stderr, which the tests read with communicate(); kept from there.
        original = subprocess.Popen.communicate
        handler = self.handler

        def communicate(process: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
            out, err = original(process, *args, **kwargs)
            argv = process.args if isinstance(process.args, list | tuple) else [process.args]
            program = os.path.basename(str(argv[0])) if argv else ""
            if err and program == "licensing":
                text = err.decode("utf-8", "replace") if isinstance(err, bytes) else err
                handler.keep(f"stderr of `licensing {' '.join(map(str, argv[1:3]))}`", text)
            return out, err

        subprocess.Popen.communicate = communicate  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(subprocess.Popen, "communicate", original))

    # ---- the hooks ---------------------------------------------------------------------

    def pytest_sessionstart(self) -> None:
        """Keep SQL statements out of pytest's own per-test log capture (shown with a
        failure, and carried in every xdist report): they are for the scan."""
        logging_plugin = self.config.pluginmanager.get_plugin("logging-plugin")
        for name in ("caplog_handler", "report_handler"):
            handler = getattr(logging_plugin, name, None)
            if isinstance(handler, logging.Handler):
                handler.addFilter(not_chatter)
                self._undo.append(lambda handler=handler: handler.removeFilter(not_chatter))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Gather what an xdist worker found, and how much it scanned."""
        output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if output:
            self.worker_findings.extend(Finding(**item) for item in output["findings"])
            self.worker_counts.append(output["counts"])

    def _counts(self) -> dict[str, int]:
        return {
            "records": self.handler.records,
            "texts": len(self.handler.texts),
            "values": len(self.values),
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Scan; a worker hands its findings to the controller, which fails the run."""
        self.findings = scan(self.values, self.handler.items())
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[WORKER_OUTPUT_KEY] = {
                "findings": [asdict(f) for f in self.findings],
                "counts": self._counts(),
            }
            return
        self.findings = sorted(set(self.findings) | set(self.worker_findings), key=str)
        if self.findings and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say how much was scanned and what was found (never the values)."""
        counts = [self._counts(), *self.worker_counts]
        total = {key: sum(c[key] for c in counts) for key in counts[0]}
        summary = (
            f"log scan: {total['records']} log records ({total['texts']} distinct texts) "
            f"searched for {total['values']} personal values and secrets"
        )
        if not self.findings:
            terminalreporter.write_line(f"{summary}: none found")
            return
        terminalreporter.section("personal data in the logs", red=True, bold=True)
        for finding in self.findings:
            terminalreporter.write_line(f"- {finding}", red=True)
        terminalreporter.write_line(
            f"{summary}. A personal value or a secret reached a log (tests/log_scan.py): "
            "log ids, never the values.",
            red=True,
        )

    def pytest_unconfigure(self) -> None:
        """Remove the capture and the collectors."""
        self.uninstall()


def register(config: pytest.Config) -> None:
    """Install the log scan for this session (from conftest's pytest_configure)."""
    config.pluginmanager.register(LogScan(config), "personal-data-log-scan")
