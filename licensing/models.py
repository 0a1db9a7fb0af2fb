"""Imports every model so that metadata and mappers are complete (Alembic, tests)."""

from licensing.audit.models import AuditEvent, AuditPersonalValue
from licensing.auth.models import ApiToken, User
from licensing.db import Base
from licensing.incidents.models import (
    Incident,
    IncidentImportRejection,
    IncidentImportRun,
    IncidentPerson,
    PremisesIncidentLink,
    Recommendation,
)
from licensing.premises.models import (
    LicensingAuthority,
    Premises,
    RegisterImportRejection,
    RegisterImportRun,
    ReviewApplication,
)

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuditPersonalValue",
    "Base",
    "Incident",
    "IncidentImportRejection",
    "IncidentImportRun",
    "IncidentPerson",
    "PremisesIncidentLink",
    "Recommendation",
    "LicensingAuthority",
    "Premises",
    "RegisterImportRejection",
    "RegisterImportRun",
    "ReviewApplication",
    "User",
]
