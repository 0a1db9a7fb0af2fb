"""Map and charts pages."""

from __future__ import annotations

from flask import Blueprint

reports_bp = Blueprint("reports", __name__)
