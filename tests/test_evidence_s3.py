"""The evidence store in an S3-compatible bucket (EVIDENCE_STORE=s3), for deployments
whose nodes share no file system.

The bucket is served over HTTP on loopback by moto's S3 server, and the app reaches it
with boto3 as it would AWS S3, MinIO or Ceph: real requests on a real socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import ConfigError
from licensing import create_app
from licensing.evidence import store
from licensing.evidence.models import Attachment
from licensing.maintenance.backup import export_evidence, import_evidence
from tests.conftest import IsolatedClient, sign_in
from tests.test_attachments import image_bytes, incident, pdf_bytes, upload

__all__ = ["incident"]  # a fixture, used by name

REGION = "eu-west-2"
PREFIX = "evidence/"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server on a loopback port, and credentials for it."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "licensing-test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "licensing-test-secret"  # noqa: S105 - test server
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket for this test."""
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    _client(s3_endpoint).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


def s3_app(database_url: str, endpoint: str, bucket: str, unused_dir: Path) -> Flask:
    """A node of the app keeping its evidence in `bucket`."""
    application = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": database_url,
            "EVIDENCE_STORE": "s3",
            "EVIDENCE_S3_BUCKET": bucket,
            "EVIDENCE_S3_PREFIX": PREFIX,
            "EVIDENCE_S3_ENDPOINT_URL": endpoint,
            "EVIDENCE_S3_REGION": REGION,
            # Set, so that a write to it would show: nothing may go there.
            "EVIDENCE_DIR": str(unused_dir),
        }
    )
    application.test_client_class = IsolatedClient
    return application


@pytest.fixture
def app(database_url: str, tmp_path: Path, s3_endpoint: str, bucket: str) -> Iterator[Flask]:
    """The app on this test's database, its evidence in this test's bucket."""
    application = s3_app(database_url, s3_endpoint, bucket, tmp_path / "no-evidence-here")
    yield application
    application.extensions["db_engine"].dispose()


def objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, by key."""
    client = _client(endpoint)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_upload_is_an_object_in_the_bucket_and_downloads_checked(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    incident: Any,
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
) -> None:
    client = app.test_client()
    sign_in(client, world["officer"])
    data = pdf_bytes()
    page = f"/incidents/{incident.id}"
    response = upload(client, page, f"{page}/attachments", data, "statement.pdf")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    [attachment] = session.scalars(select(Attachment)).all()
    digest = store.sha256_of(data)
    assert attachment.sha256 == digest
    assert objects(s3_endpoint, bucket) == {f"{PREFIX}{digest[:2]}/{digest}": data}
    assert not (tmp_path / "no-evidence-here").exists()

    download = client.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == data

    # The same content again is not a second object.
    again = upload(client, page, f"{page}/attachments", data, "statement again.pdf")
    assert again.status_code == 302
    assert session.scalar(select(func.count()).select_from(Attachment)) == 2
    assert len(objects(s3_endpoint, bucket)) == 1


def test_an_object_changed_in_the_bucket_is_refused_not_served(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    incident: Any,
    s3_endpoint: str,
    bucket: str,
) -> None:
    client = app.test_client()
    sign_in(client, world["officer"])
    data = image_bytes("PNG")
    page = f"/incidents/{incident.id}"
    assert upload(client, page, f"{page}/attachments", data, "still.png").status_code == 302
    [attachment] = session.scalars(select(Attachment)).all()
    key = f"{PREFIX}{attachment.sha256[:2]}/{attachment.sha256}"
    _client(s3_endpoint).put_object(Bucket=bucket, Key=key, Body=b"altered after upload")

    response = client.get(f"/attachments/{attachment.id}")
    assert response.status_code == 500
    assert "no longer matches its hash" in response.get_data(as_text=True)
    _client(s3_endpoint).delete_object(Bucket=bucket, Key=key)
    gone = client.get(f"/attachments/{attachment.id}")
    assert gone.status_code == 500
    assert "missing from the evidence store" in gone.get_data(as_text=True)


def test_two_nodes_share_the_bucket(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    incident: Any,
    database_url: str,
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
) -> None:
    """Uploaded through one node, downloaded through another: nothing is on either's
    disk."""
    node_b = s3_app(database_url, s3_endpoint, bucket, tmp_path / "node-b")
    try:
        on_a, on_b = app.test_client(), node_b.test_client()
        sign_in(on_a, world["officer"])
        sign_in(on_b, world["supervisor"])
        data = image_bytes("JPEG")
        page = f"/incidents/{incident.id}"
        assert upload(on_a, page, f"{page}/attachments", data, "cctv.jpg").status_code == 302
        [attachment] = session.scalars(select(Attachment)).all()
        downloaded = on_b.get(f"/attachments/{attachment.id}")
        assert downloaded.status_code == 200 and downloaded.data == data
        assert on_b.get("/readyz").get_json()["checks"]["evidence_store"] == "ok"
    finally:
        node_b.extensions["db_engine"].dispose()
    assert not (tmp_path / "node-b").exists() and not (tmp_path / "no-evidence-here").exists()


def test_an_unreachable_bucket_refuses_the_upload_saves_nothing_and_fails_readiness(
    session: Session, world: dict[str, Any], incident: Any, database_url: str, tmp_path: Path
) -> None:
    dead = s3_app(database_url, f"http://127.0.0.1:{closed_port()}", "evidence", tmp_path / "x")
    try:
        client = dead.test_client()
        sign_in(client, world["officer"])
        page = f"/incidents/{incident.id}"
        response = upload(client, page, f"{page}/attachments", pdf_bytes(), "statement.pdf")
        assert response.status_code == 507
        text = response.get_data(as_text=True)
        assert "could not be stored" in text and "Nothing was saved" in text
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["evidence_store"] == "failed"
    finally:
        dead.extensions["db_engine"].dispose()


def test_backup_copies_the_bucket_out_and_restore_puts_it_back(
    app: Flask, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    files = [b"first file", b"second file", pdf_bytes()]
    with app.app_context():
        digests = [store.put(data) for data in files]
        source = store.backend()
        copied = export_evidence(source, tmp_path / "backup")
    assert (copied.files, copied.damaged) == (3, [])
    assert {p.name for p in (tmp_path / "backup").rglob("*") if p.is_file()} == set(digests)

    # A file damaged in the backup is named and not put (a bucket checks each PUT).
    damaged = tmp_path / "backup" / digests[0][:2] / digests[0]
    damaged.write_bytes(b"bit rot")
    fresh = f"restored-{uuid.uuid4().hex[:8]}"
    _client(s3_endpoint).create_bucket(
        Bucket=fresh, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    target = store.S3Store(_client(s3_endpoint), fresh, PREFIX)
    restored = import_evidence(tmp_path / "backup", target)
    assert (restored.files, restored.damaged) == (2, [digests[0]])
    assert sorted(target.digests()) == sorted(digests[1:])
    assert target.read(digests[2]) == files[2]
    again = import_evidence(tmp_path / "backup", target)
    assert (again.files, again.already_present) == (0, 2)


def test_the_backup_command_copies_the_bucket_into_the_backup(
    app: Flask, session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    with app.app_context():
        digest = store.put(b"a rendered bundle")
    backup = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", str(backup)])
    assert result.exit_code == 0, result.output
    assert "evidence files 1 (17 bytes)" in result.output
    assert (backup / "evidence" / digest[:2] / digest).read_bytes() == b"a rendered bundle"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"EVIDENCE_STORE": "s3"}, "EVIDENCE_S3_BUCKET must name the bucket"),
        ({"EVIDENCE_STORE": "ftp"}, "EVIDENCE_STORE must be one of directory, s3"),
    ],
)
def test_a_store_that_cannot_work_stops_the_app_starting(
    database_url: str, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app({"ENV_NAME": "testing", "DATABASE_URL": database_url, **settings})
