"""Sending a file from the evidence store: attachments and issued letters alike."""

from __future__ import annotations

from io import BytesIO

from flask import render_template, send_file
from flask.typing import ResponseReturnValue

from licensing.errors import NotFound
from licensing.evidence import store


def send_evidence(digest: str, mimetype: str, download_name: str) -> ResponseReturnValue:
    """The stored file with this SHA-256, checked against it, always as a download.
    A file gone or altered is said plainly (500, for whoever looks after the store: the
    hash prefix names no one); a malformed digest is a 404."""
    try:
        data = store.get(digest)
    except store.MissingEvidence as error:
        return render_template("error.html", status=500, message=str(error)), 500
    except OSError:
        # The store itself (a bucket, a mount) did not answer: a wait, not a loss.
        message = "The evidence store cannot be reached just now. Try again in a few minutes."
        return render_template("error.html", status=503, message=message), 503
    except ValueError:
        raise NotFound("Page not found") from None
    response = send_file(
        BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=download_name, max_age=0
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Evidence: never kept in a shared cache, and inert if a browser shows it anyway.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
