"""Security issue #7, hostile input: SQL metacharacters, oversize and deeply nested JSON,
CSV files built to exhaust memory or time, decompression bombs and polyglot uploads, and
arbitrary text through every importer and form. Each test is named after the attack.

The rule throughout: never a 500 and never a partial write; a clear 4xx, a refused file
or rejected rows.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from licensing.auth.services import create_token
from licensing.errors import ValidationFailed
from licensing.evidence.attachments import attachment_text, sniff_and_check
from licensing.evidence.models import Attachment
from licensing.incidents import services as incident_services
from licensing.incidents.importer import import_incidents
from licensing.incidents.models import Incident, IncidentImportRun
from licensing.premises.models import Premises, RegisterImportRun
from licensing.premises.register_import import import_register
from tests.conftest import csrf_from, sign_in

SQL_PAYLOADS = ["' OR 1=1 --", '"; DROP TABLE premises; --', "%", "_", "\\"]
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def count(session: Session, model: Any) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def signed_in(app: Flask, user: Any) -> FlaskClient:
    client = app.test_client()
    sign_in(client, user)
    return client


def bearer(session: Session, user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(session, user.email)}"}


# ---- SQL metacharacters ----------------------------------------------------------------


@pytest.fixture
def tricky(world: dict[str, Any], make_premises: Any) -> dict[str, Premises]:
    """Premises whose names hold each metacharacter, and one that holds none."""
    names = {
        "%": "100% Proof",
        "_": "Under_score Bar",
        "\\": "Back\\slash Inn",
        "' OR 1=1 --": "O'Neill's ' OR 1=1 -- Tavern",
        '"; DROP TABLE premises; --': 'The "; DROP TABLE premises; -- Arms',
    }
    return {
        term: make_premises(world["liv"], world["officer"], evidence=False, name=name)
        for term, name in names.items()
    }


@pytest.mark.parametrize("term", SQL_PAYLOADS)
def test_sql_injection_in_the_premises_search_box_is_a_literal_search(
    app: Flask, session: Session, world: dict[str, Any], tricky: dict[str, Premises], term: str
) -> None:
    before = count(session, Premises)
    officer = signed_in(app, world["officer"])
    html = officer.get("/premises", query_string={"q": term}).get_data(as_text=True)
    assert tricky[term].name.replace("'", "&#39;").replace('"', "&#34;") in html
    for other, premises in tricky.items():
        if other != term and term not in premises.name:
            assert premises.name.replace("'", "&#39;").replace('"', "&#34;") not in html
    assert "The Crown" not in html and "The Swan" not in html  # % and _ match themselves only
    # The API's q filter: the same literal search.
    response = app.test_client().get(
        "/api/v1/premises", query_string={"q": term}, headers=bearer(session, world["officer"])
    )
    assert response.status_code == 200
    names = [item["name"] for item in response.get_json()["items"]]
    assert names == [p.name for p in tricky.values() if term in p.name]
    assert count(session, Premises) == before  # nothing dropped, nothing added


@pytest.mark.parametrize("term", SQL_PAYLOADS)
def test_sql_injection_in_incident_filters_is_ignored_not_run(
    app: Flask, session: Session, world: dict[str, Any], term: str
) -> None:
    officer = signed_in(app, world["officer"])
    everything = officer.get("/incidents").get_data(as_text=True)
    for url in ("/incidents", "/incidents/export.csv"):
        response = officer.get(
            url, query_string={"category": term, "source": term, "linked": term, "page": term}
        )
        assert response.status_code == 200, url
    response = officer.get("/incidents", query_string={"category": term})
    assert response.get_data(as_text=True).count("/incidents/") == everything.count("/incidents/")
    assert count(session, Premises) == 2


def test_sql_metacharacters_in_form_and_api_fields_are_stored_literally(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    officer = signed_in(app, world["officer"])
    token = csrf_from(officer.get("/premises/new").get_data(as_text=True))
    response = officer.post(
        "/premises/new",
        data={
            "csrf_token": token,
            "authority": "LIV",
            "licence_number": "' OR 1=1 --",
            "name": '"; DROP TABLE premises; --',
            "address": "%_\\",
            "licence_status": "current",
            "case_officer_id": str(world["officer"].id),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    response = app.test_client().post(
        "/api/v1/premises",
        headers=bearer(session, world["officer"]),
        json={
            "authority": "LIV",
            "licence_number": "%",
            "name": "' OR 1=1 --",
            "dps": '"; DROP TABLE premises; --',
            "address": "_\\",
        },
    )
    assert response.status_code == 201, response.get_json()
    stored = {
        p.licence_number: (p.name, p.address, p.dps)
        for p in session.scalars(select(Premises)).all()
    }
    assert stored["' OR 1=1 --"][:2] == ('"; DROP TABLE premises; --', "%_\\")
    assert stored["%"] == ("' OR 1=1 --", "_\\", '"; DROP TABLE premises; --')
    assert count(session, Premises) == 4
    recorded = incident_services.record_incident(
        session,
        world["officer"],
        {"category": "Public order", "occurred_at": "2026-01-01T00:00:00Z", "source_ref": "%"},
    )
    assert recorded.incident.source_ref == "%"
    again = incident_services.record_incident(
        session,
        world["officer"],
        {"category": "Public order", "occurred_at": "2026-01-01T00:00:00Z", "source_ref": "_"},
    )
    assert again.created  # "_" is not a wildcard matching "%"


# ---- JSON bombs ------------------------------------------------------------------------

API_POSTS = ["/api/v1/incidents", "/api/v1/premises"]


@pytest.mark.parametrize("url", API_POSTS)
def test_oversize_json_body_is_a_413_json_error(
    app: Flask, session: Session, world: dict[str, Any], url: str
) -> None:
    before = (count(session, Premises), count(session, Incident))
    body = b" " * (int(app.config["MAX_CONTENT_LENGTH"]) + 1)
    response = app.test_client().post(
        url,
        data=body,
        headers={**bearer(session, world["officer"])},
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]
    assert (count(session, Premises), count(session, Incident)) == before


@pytest.mark.parametrize("url", API_POSTS)
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 100_000, b'{"items":' + b"[" * 100_000],
    ids=["arrays", "objects", "items"],
)
def test_deeply_nested_json_is_a_client_error_not_a_500(
    app: Flask, session: Session, world: dict[str, Any], url: str, body: bytes
) -> None:
    response = app.test_client().post(
        url, data=body, headers=bearer(session, world["officer"]), content_type="application/json"
    )
    assert response.status_code in (400, 422)
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "invalid"


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/premises", '{"authority":"LIV","licence_number":"S/1","name":"A\\ud800B"}'),
        (
            "/api/v1/incidents",
            '{"source_ref":"S-1","category":"Public order",'
            '"occurred_at":"2026-01-01T00:00:00Z","description":"x\\udc00"}',
        ),
        ("/api/v1/incidents", '{"items":[{"source_ref":"\\ud800","category":"Public order"}]}'),
        ("/api/v1/premises/1/transitions", '{"event":"warn","version":1,"reason":"\\ud83d"}'),
    ],
    ids=["premises", "incident", "batch", "transition"],
)
def test_lone_surrogate_escapes_in_json_are_refused_not_a_500(
    app: Flask, session: Session, world: dict[str, Any], url: str, body: str
) -> None:
    before = (count(session, Premises), count(session, Incident))
    response = app.test_client().post(
        url, data=body, headers=bearer(session, world["officer"]), content_type="application/json"
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "surrogate" in response.get_json()["message"]
    assert (count(session, Premises), count(session, Incident)) == before


# ---- CSV files built to exhaust memory or time ----------------------------------------

WIDE_HEADER = "source_ref,category," + ",".join(f"c{i}" for i in range(100_000))
INCIDENT_FILES = {
    "100000_columns_in_a_row": b"source_ref,category\n" + b",".join([b"x"] * 100_000) + b"\n",
    "100000_columns_in_the_header": WIDE_HEADER.encode() + b"\nR1,Public order\n",
    "50mb_line": b"source_ref,category,description\nR1,Public order," + b"a" * 50_000_000 + b"\n",
    "50mb_quoted_field": b'source_ref,category,description\nR1,Public order,"' + b"a" * 50_000_000,
    "50mb_header": b"source_ref,category," + b"a" * 50_000_000 + b"\nR1,Public order,x\n",
}


def _as_register(data: bytes) -> bytes:
    return data.replace(b"source_ref,category", b"CASEREFERENCE,PREMISESNAME", 1).replace(
        b"R1,Public order", b"R1,The Bell", 1
    )


def _assert_rejected(run: Any) -> None:
    """A clear refusal: a ValidationFailed message, or a run whose rows were all rejected."""
    if isinstance(run, ValidationFailed):
        assert "CSV" in run.message or "header" in run.message or "columns" in run.message
        assert len(run.message) < 300
    else:
        assert run.created == 0 and run.rejected == run.read >= 1, run.summary()


@pytest.mark.parametrize("name", list(INCIDENT_FILES))
def test_csv_bomb_through_the_incident_importer_is_refused_quickly_and_writes_nothing(
    session: Session, world: dict[str, Any], name: str
) -> None:
    data = INCIDENT_FILES[name]
    before = (count(session, Incident), count(session, IncidentImportRun))
    started = time.monotonic()
    try:
        outcome: Any = import_incidents(session, data, f"{name}.csv", "generic", None)
    except ValidationFailed as error:
        outcome = error
        assert (count(session, Incident), count(session, IncidentImportRun)) == before
    else:
        assert count(session, Incident) == before[0]  # a run row, but no incident
    assert time.monotonic() - started < 10
    _assert_rejected(outcome)


@pytest.mark.parametrize("name", list(INCIDENT_FILES))
def test_csv_bomb_through_the_register_import_is_refused_quickly_and_writes_nothing(
    session: Session, world: dict[str, Any], name: str
) -> None:
    data = _as_register(INCIDENT_FILES[name])
    before = (count(session, Premises), count(session, RegisterImportRun))
    started = time.monotonic()
    try:
        outcome: Any = import_register(session, data, f"{name}.csv", world["liv"], None)
    except ValidationFailed as error:
        outcome = error
        assert (count(session, Premises), count(session, RegisterImportRun)) == before
    else:
        assert count(session, Premises) == before[0]
    assert time.monotonic() - started < 10
    _assert_rejected(outcome)


def _upload(client: FlaskClient, page: str, fields: dict[str, Any]) -> Any:
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(
        page, data={"csrf_token": token, **fields}, content_type="multipart/form-data"
    )


LONG_LINE = b"source_ref,category,description\nR1,Public order," + b"a" * 1_000_000 + b"\n"


@pytest.mark.parametrize(
    "data", [LONG_LINE, INCIDENT_FILES["100000_columns_in_a_row"]], ids=["long_line", "wide"]
)
def test_csv_bomb_through_the_upload_pages_is_a_clear_refusal(
    app: Flask, session: Session, world: dict[str, Any], data: bytes
) -> None:
    officer = signed_in(app, world["officer"])
    before = (count(session, Incident), count(session, Premises))
    response = _upload(
        officer,
        "/incidents/import",
        {"format": "generic", "incident_file": (io.BytesIO(data), "bomb.csv")},
    )
    assert response.status_code in (302, 422), response.status_code
    if response.status_code == 422:
        assert "cannot be read as CSV" in response.get_data(as_text=True)
    response = _upload(
        officer,
        "/premises/import",
        {"authority": "LIV", "register_file": (io.BytesIO(_as_register(data)), "bomb.csv")},
    )
    assert response.status_code in (302, 422), response.status_code
    if response.status_code == 422:
        assert "cannot be read as CSV" in response.get_data(as_text=True)
    assert (count(session, Incident), count(session, Premises)) == before


def test_a_50mb_line_uploaded_to_the_import_page_is_refused_with_a_clear_message(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    officer = signed_in(app, world["officer"])
    before = (count(session, IncidentImportRun), count(session, Incident))
    data = INCIDENT_FILES["50mb_line"]  # just under MAX_CONTENT_LENGTH (50 MiB) as a form
    response = _upload(
        officer,
        "/incidents/import",
        {"format": "generic", "incident_file": (io.BytesIO(data), "big.csv")},
    )
    assert response.status_code in (413, 422)
    if response.status_code == 422:
        assert "a field is longer than" in response.get_data(as_text=True)
    assert (count(session, IncidentImportRun), count(session, Incident)) == before


# ---- decompression bombs and polyglot uploads ------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def pdf_with_contents(stream: bytes, compressed: bool = True) -> bytes:
    """A one-page PDF (with a correct cross-reference) whose page contents are `stream`."""
    flate = b" /Filter /FlateDecode" if compressed else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def flate_bomb(megabytes: int) -> bytes:
    """A FlateDecode stream of `megabytes` MiB of zeros (about 1 KB compressed per MiB)."""
    compressor = zlib.compressobj(9)
    chunk = b"\x00" * (1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()


def _zip_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


GIF_HTML = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00;*/=1;<html><script>alert(1)</script></html>"


def test_png_declaring_50000_by_50000_pixels_is_refused_before_decoding() -> None:
    data = png_declaring(50_000, 50_000)
    assert len(data) < 200
    started = time.monotonic()
    with pytest.raises(ValidationFailed, match="megapixels"):
        sniff_and_check(data, 20 * 1024 * 1024)
    assert time.monotonic() - started < 1


def _upload_attachment(client: FlaskClient, incident_id: int, data: bytes, name: str) -> Any:
    page = f"/incidents/{incident_id}/attachments"
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(
        page,
        data={
            "attachment-csrf_token": token,
            "attachment-description": "Hostile upload",
            "attachment-file": (io.BytesIO(data), name),
        },
        content_type="multipart/form-data",
    )


UPLOADS = {
    "png_decompression_bomb": (png_declaring(50_000, 50_000), "tiny.png", "megapixels"),
    "gif_html_polyglot_renamed_png": (GIF_HTML, "photo.png", "must be a PDF, JPEG or PNG"),
    "pdf_header_then_html": (
        b"%PDF-1.4\n<html><body><script>alert(1)</script></body></html>",
        "report.pdf",
        "not a valid PDF",
    ),
    "html_named_pdf": (b"<!DOCTYPE html><script>alert(1)</script>", "x.pdf", "PDF, JPEG or PNG"),
    "pdf_with_zip_appended": (pdf_with_contents(b"BT ET", False) + _zip_bytes(), "a.pdf", None),
    "pdf_with_html_appended": (
        pdf_with_contents(b"BT ET", False) + b"<html><script>alert(1)</script></html>",
        "b.pdf",
        None,
    ),
    "pdf_flate_bomb_512mb": (pdf_with_contents(flate_bomb(512)), "bomb.pdf", None),
}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_bomb_and_polyglot_uploads_are_refused_or_served_only_as_their_true_type(
    app: Flask, session: Session, world: dict[str, Any], name: str
) -> None:
    data, file_name, refusal = UPLOADS[name]
    incident = incident_services.record_incident(
        session,
        world["officer"],
        {"category": "Public order", "occurred_at": "2026-01-01T00:00:00Z", "source_ref": "U1"},
    ).incident
    officer = signed_in(app, world["officer"])
    started = time.monotonic()
    response = _upload_attachment(officer, incident.id, data, file_name)
    assert time.monotonic() - started < 10
    stored = session.scalars(select(Attachment)).all()
    if refusal is not None or response.status_code == 422:
        assert response.status_code == 422
        if refusal is not None:
            assert refusal in response.get_data(as_text=True)
        assert stored == []
        return
    assert response.status_code == 302
    [attachment] = stored
    assert attachment.media_type == "application/pdf"  # what it truly is
    download = officer.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    started = time.monotonic()
    attachment_text(attachment)  # the bundle builder reads it: bounded by pypdf's limits
    assert time.monotonic() - started < 10


# ---- arbitrary input through the importers and the forms -------------------------------

CSV_LIKE = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(max_size=500).map(
        lambda t: ("source_ref,category,description\n" + t).encode("utf-8", "surrogatepass")
    ),
    st.text(max_size=500).map(lambda t: ("source_ref,category\n" + t).encode("cp1252", "ignore")),
)


@HYPOTHESIS
@given(data=CSV_LIKE, fmt=st.sampled_from(["generic", "police-uk"]))
def test_arbitrary_bytes_through_the_incident_importer(
    session: Session, world: dict[str, Any], data: bytes, fmt: str
) -> None:
    if fmt == "police-uk" and data.startswith(b"source_ref"):
        data = (
            b"Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
            b"LSOA name,Crime type,Last outcome category,Context\n" + data.split(b"\n", 1)[-1]
        )
    before = count(session, Incident)
    try:
        result = import_incidents(session, data, "fuzz.csv", fmt, None)
    except ValidationFailed:
        assert count(session, Incident) == before
        return
    assert result.read == result.created + result.duplicate + result.rejected
    assert count(session, Incident) == before + result.created


@HYPOTHESIS
@given(data=CSV_LIKE)
def test_arbitrary_bytes_through_the_register_import(
    session: Session, world: dict[str, Any], data: bytes
) -> None:
    data = data.replace(b"source_ref,category", b"CASEREFERENCE,PREMISESNAME", 1)
    before = count(session, Premises)
    try:
        result = import_register(session, data, "fuzz.csv", world["liv"], None)
    except ValidationFailed:
        assert count(session, Premises) == before
        return
    assert result.read == (
        result.created + result.updated + result.unchanged + result.skipped + result.rejected
    )
    assert count(session, Premises) == before + result.created


TEXT = st.text(max_size=300)
PREMISES_FIELDS = (
    "authority",
    "licence_number",
    "name",
    "address",
    "postcode",
    "uprn",
    "latitude",
    "longitude",
    "licence_holder",
    "dps",
    "licensable_activities",
    "opening_hours",
    "licence_status",
    "case_officer_id",
)
INCIDENT_FIELDS = (
    "category",
    "occurred_at",
    "source_ref",
    "description",
    "location",
    "latitude",
    "longitude",
    "licence_number",
    "authority",
    "person_role",
    "person_name",
    "person_phone",
    "person_email",
)


@pytest.fixture
def officer_client(app: Flask, world: dict[str, Any]) -> tuple[FlaskClient, str]:
    client = signed_in(app, world["officer"])
    return client, csrf_from(client.get("/premises/new").get_data(as_text=True))


@HYPOTHESIS
@given(values=st.fixed_dictionaries({name: TEXT for name in PREMISES_FIELDS}))
def test_arbitrary_strings_in_every_field_of_the_premises_form(
    officer_client: tuple[FlaskClient, str], values: dict[str, str]
) -> None:
    client, token = officer_client
    response = client.post("/premises/new", data={"csrf_token": token, **values})
    assert response.status_code in (302, 422), response.status_code


@HYPOTHESIS
@given(values=st.fixed_dictionaries({name: TEXT for name in INCIDENT_FIELDS}))
def test_arbitrary_strings_in_every_field_of_the_incident_form(
    officer_client: tuple[FlaskClient, str], values: dict[str, str]
) -> None:
    client, token = officer_client
    response = client.post("/incidents/new", data={"csrf_token": token, **values})
    assert response.status_code in (302, 422), response.status_code


@pytest.mark.parametrize(
    ("licence_number", "authority", "field"),
    [
        ("PL/\x000001", "LIV", "licence_number"),  # a NUL in the licence number
        ("PL/0001", "LIV\x00", "authority"),  # a NUL where an authority's code goes
        ("\x00", "\x00", "licence_number"),  # found by hypothesis on PostgreSQL
    ],
)
def test_a_nul_in_the_premises_an_incident_names_is_refused_not_looked_up(
    officer_client: tuple[FlaskClient, str], licence_number: str, authority: str, field: str
) -> None:
    client, token = officer_client
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": token,
            "category": "Public order",
            "occurred_at": "2026-01-01 23:40",
            "description": "Fight outside",
            "licence_number": licence_number,
            "authority": authority,
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'href="#{field}"' in html  # the error summary names the field


def test_a_nul_in_the_licence_number_of_a_council_asb_report_is_refused(
    app: Flask, world: dict[str, Any]
) -> None:
    client = signed_in(app, world["council"])
    token = csrf_from(client.get("/asb-reports/new").get_data(as_text=True))
    response = client.post(
        "/asb-reports/new",
        data={
            "csrf_token": token,
            "licence_number": world["premises"].licence_number + "\x00",
            "category": "ASB - nuisance",
            "occurred_at": "2026-01-01 23:40",
            "description": "Noise at closing time",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'href="#licence_number"' in html and "Remove the NUL character" in html


@HYPOTHESIS
@given(
    values=st.fixed_dictionaries(
        {
            "category": st.sampled_from(["Public order", "Anti-social behaviour"]),
            "occurred_at": st.just("2026-01-01 23:40"),
            "description": TEXT,
            "location": TEXT,
            "source_ref": TEXT,
            "person_role": st.sampled_from(["", "victim", "witness"]),
            "person_name": TEXT,
            "person_phone": TEXT,
            "person_email": TEXT,
        }
    )
)
def test_arbitrary_strings_in_a_valid_incident_form_are_stored_or_refused(
    officer_client: tuple[FlaskClient, str], values: dict[str, str]
) -> None:
    client, token = officer_client
    response = client.post("/incidents/new", data={"csrf_token": token, **values})
    assert response.status_code in (302, 422), response.status_code


# ---- ids too large for the database ---------------------------------------------------


@pytest.mark.parametrize("huge", [2**31, 2**63, 10**30])
def test_an_id_too_large_for_the_database_is_a_404_on_every_route(
    app: Flask, world: dict[str, Any], huge: int
) -> None:
    """A path id beyond PostgreSQL's integer (or SQLite's 64 bits) once reached the
    driver and answered 500; now no route matches it."""
    client = signed_in(app, world["supervisor"])
    adapter = app.url_map.bind("localhost")
    checked = 0
    for rule in app.url_map.iter_rules():
        converters = rule._converters  # noqa: SLF001
        ints = [n for n in rule.arguments if isinstance(converters[n], IntegerConverter)]
        if not ints or "GET" not in (rule.methods or set()):
            continue
        values = {n: huge if n in ints else "warn" for n in rule.arguments}
        path = adapter.build(rule.endpoint, values)
        assert str(huge) in path
        response = client.get(path)
        assert response.status_code == 404, (rule.rule, response.status_code)
        checked += 1
    assert checked >= 20
