"""Configuration read from the environment.

Every setting has one name and one place. `LICENSING_ENV` picks the profile
(development, testing, production); the other variables override single values.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - refused in production


class ConfigError(RuntimeError):
    """Raised when the configuration is unsafe or incomplete."""


class Config:
    """Settings shared by every profile."""

    ENV_NAME = "development"
    SECRET_KEY = DEFAULT_SECRET_KEY
    DATABASE_URL = f"sqlite:///{INSTANCE_DIR / 'licensing.db'}"
    BASE_URL = "http://127.0.0.1:5000"
    WTF_CSRF_ENABLED = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    # Flask-Login's remember-me cookie (not issued today) gets the same protection.
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    # A signed-in session ends after this many minutes without a page request, and this
    # many hours after sign-in whatever the activity.
    SESSION_IDLE_MINUTES = 30
    SESSION_ABSOLUTE_HOURS = 12
    # Sign-in throttling (Flask-Limiter). The store is shared by every web node that
    # points at it: memory:// is one process only; use redis://host:6379/0 for several.
    RATELIMIT_STORAGE_URI = "memory://"
    # Attempts to sign in to one account (every POST naming it), and failed sign-ins from
    # one client address (a station's officers share one, so successes do not count).
    SIGN_IN_LIMIT_PER_ACCOUNT = "5 per minute; 20 per hour"
    SIGN_IN_LIMIT_PER_ADDRESS = "30 per minute; 300 per hour"
    # This many wrong passwords in a row lock the account until an admin unlocks it.
    ACCOUNT_LOCKOUT_FAILURES = 10
    # Strict-Transport-Security max-age in seconds; 0 sends no HSTS header.
    HSTS_SECONDS = 0
    # An emailed password reset link works once, for this many minutes.
    PASSWORD_RESET_MINUTES = 60
    # Optional sign-in through the force's OpenID Connect provider (licensing/auth/oidc.py);
    # off unless OIDC_ENABLED is true, and then the issuer, client id and secret are needed.
    OIDC_ENABLED = False
    OIDC_ISSUER: str | None = None
    OIDC_CLIENT_ID: str | None = None
    OIDC_CLIENT_SECRET: str | None = None
    OIDC_SCOPES = "openid email profile"
    OIDC_PROVIDER_NAME = "your force account"
    # A GOV.UK bank-holidays.json file; when set it wins over the `holidays` package.
    BANK_HOLIDAYS_FILE: str | None = None
    PAGE_SIZE = 25
    API_PAGE_SIZE = 50
    API_MAX_PAGE_SIZE = 200
    # Register uploads larger than this are refused before they are read.
    MAX_CONTENT_LENGTH = 50 * 1024 * 1024
    TESTING = False
    FAST_PASSWORD_HASHING = False
    # Outgoing email (licensing.notifications). The defaults suit a local test server:
    # `python -m aiosmtpd -n -l 127.0.0.1:1025`. SMTP_TLS is none, starttls or ssl.
    SMTP_HOST = "localhost"
    SMTP_PORT = 1025
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TLS = "none"
    SMTP_TIMEOUT = 10
    MAIL_FROM = "licensing@localhost"
    # An email that fails this many times is marked failed and waits for an admin's retry.
    OUTBOX_MAX_ATTEMPTS = 8
    # A row claimed longer ago than this is taken to belong to a dead sender and resent.
    OUTBOX_LEASE_SECONDS = 600
    # Each minutely pass of the sender sends at most this many emails, and starts no new
    # one after this many seconds: a burst (10,000 alerts) drains at the relay's pace.
    OUTBOX_SEND_BATCH = 1000
    OUTBOX_SEND_SECONDS = 20
    # The morning digest goes at this hour, London time.
    ALERT_DIGEST_HOUR = 7
    # Attachments and rendered bundles, stored under their SHA-256, outside the web root:
    # in EVIDENCE_DIR ("directory", a shared mount when there are several web nodes) or in
    # an S3-compatible bucket ("s3": AWS S3, MinIO, Ceph; credentials from the usual AWS
    # variables or the instance's role). Every node must use the same store.
    EVIDENCE_STORE = "directory"
    EVIDENCE_DIR = str(INSTANCE_DIR / "evidence")
    EVIDENCE_S3_BUCKET = ""
    EVIDENCE_S3_PREFIX = "evidence/"
    EVIDENCE_S3_ENDPOINT_URL = ""  # empty: AWS itself; else e.g. https://minio.internal:9000
    EVIDENCE_S3_REGION = ""
    # Uploads of documents and photos larger than this are refused.
    ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
    # `licensing retention run` deletes incidents linked to no premises once older than this.
    RETENTION_UNLINKED_INCIDENT_MONTHS = 24
    # Days before and after an intervention that "Did it work?" compares (7 to 365).
    ASSESSMENT_WINDOW_DAYS = 90
    # A completed action plan followed by this many days without a confirmed incident
    # recommends standing the premises down (licensing.actionplans).
    ACTION_PLAN_QUIET_DAYS = 28
    # The map's background tiles (a Leaflet URL template) and the credit they require.
    # The map still draws its markers, and the table below it, when no tile loads.
    MAP_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    MAP_TILE_ATTRIBUTION = (
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
    )
    # The force's name at the head of every standard letter (licensing.letters).
    LETTERHEAD = "Police Licensing Unit"
    # Logs: "json" (one object a line, with the request id) or "text" (Python's default).
    LOG_FORMAT = "text"
    # The bearer token a Prometheus scraper sends to /metrics; unset, /metrics answers 404.
    METRICS_TOKEN: str | None = None

    @classmethod
    def from_environment(cls) -> dict[str, object]:
        """Return this profile's settings with environment overrides applied."""
        settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        for name in (
            "SECRET_KEY",
            "DATABASE_URL",
            "BASE_URL",
            "BANK_HOLIDAYS_FILE",
            "SMTP_HOST",
            "SMTP_PORT",
            "SMTP_USERNAME",
            "SMTP_PASSWORD",
            "SMTP_TLS",
            "SMTP_TIMEOUT",
            "MAIL_FROM",
            "OUTBOX_MAX_ATTEMPTS",
            "OUTBOX_LEASE_SECONDS",
            "OUTBOX_SEND_BATCH",
            "OUTBOX_SEND_SECONDS",
            "ALERT_DIGEST_HOUR",
            "EVIDENCE_STORE",
            "EVIDENCE_DIR",
            "EVIDENCE_S3_BUCKET",
            "EVIDENCE_S3_PREFIX",
            "EVIDENCE_S3_ENDPOINT_URL",
            "EVIDENCE_S3_REGION",
            "ATTACHMENT_MAX_BYTES",
            "PASSWORD_RESET_MINUTES",
            "OIDC_ENABLED",
            "OIDC_ISSUER",
            "OIDC_CLIENT_ID",
            "OIDC_CLIENT_SECRET",
            "OIDC_SCOPES",
            "OIDC_PROVIDER_NAME",
            "RETENTION_UNLINKED_INCIDENT_MONTHS",
            "ASSESSMENT_WINDOW_DAYS",
            "ACTION_PLAN_QUIET_DAYS",
            "LETTERHEAD",
            "MAP_TILE_URL",
            "MAP_TILE_ATTRIBUTION",
            "SESSION_IDLE_MINUTES",
            "SESSION_ABSOLUTE_HOURS",
            "HSTS_SECONDS",
            "RATELIMIT_STORAGE_URI",
            "SIGN_IN_LIMIT_PER_ACCOUNT",
            "SIGN_IN_LIMIT_PER_ADDRESS",
            "ACCOUNT_LOCKOUT_FAILURES",
            "LOG_FORMAT",
            "METRICS_TOKEN",
        ):
            value = os.environ.get(name)
            if value:
                settings[name] = value
        return settings


class DevelopmentConfig(Config):
    """Local use: SQLite under instance/, demo data, debug off by default."""


class TestingConfig(Config):
    """The test suite: CSRF stays on (tests post real tokens) unless a test turns it off."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"  # noqa: S105 - test profile only
    FAST_PASSWORD_HASHING = True
    # Limits no other test reaches; the throttling tests set their own.
    SIGN_IN_LIMIT_PER_ACCOUNT = "1000 per minute"
    SIGN_IN_LIMIT_PER_ADDRESS = "10000 per minute"


class ProductionConfig(Config):
    """Production: PostgreSQL, secure cookies, and a real secret or no start."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS_SECONDS = 31536000
    LOG_FORMAT = "json"

    @classmethod
    def from_environment(cls) -> dict[str, object]:
        """Refuse to start with the default secret key or without a database URL."""
        settings = super().from_environment()
        if settings["SECRET_KEY"] in (DEFAULT_SECRET_KEY, "", None):
            raise ConfigError("SECRET_KEY must be set in production")
        if not os.environ.get("DATABASE_URL"):
            raise ConfigError("DATABASE_URL must be set in production")
        return settings


PROFILES: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(env_name: str | None = None) -> dict[str, object]:
    """Return the settings for `env_name` (default: $LICENSING_ENV or development)."""
    name = env_name or os.environ.get("LICENSING_ENV", "development")
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"LICENSING_ENV must be one of {', '.join(PROFILES)}, not {name!r}"
        ) from None
    return profile.from_environment()
