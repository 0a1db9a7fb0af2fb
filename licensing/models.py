"""Imports every model so that metadata and mappers are complete (Alembic, tests)."""

from licensing.actionplans.models import (
    ActionPlan,
    ActionPlanItem,
    MeetingAction,
    MeetingAttendee,
    PartnershipMeeting,
)
from licensing.audit.models import AuditEvent, AuditPersonalValue
from licensing.auth.models import ApiToken, User
from licensing.db import Base
from licensing.deadlines.models import Deadline
from licensing.evidence.models import (
    Attachment,
    Bundle,
    BundleAccess,
    BundleBlocker,
    BundleComment,
    BundleItem,
    BundleRedaction,
)
from licensing.incidents.models import (
    Incident,
    IncidentImportRejection,
    IncidentImportRun,
    IncidentPerson,
    PremisesIncidentLink,
    Recommendation,
)
from licensing.letters.models import Letter, LetterTemplate, LetterTemplateVersion
from licensing.notifications.models import AlertPreference, OutboxEmail
from licensing.notifications.scheduler_runs import SchedulerRun
from licensing.premises.models import (
    LicensingAuthority,
    Premises,
    RegisterImportRejection,
    RegisterImportRun,
    ReviewApplication,
)
from licensing.visits.models import CalendarFeed, Visit

__all__ = [
    "ActionPlan",
    "ActionPlanItem",
    "MeetingAction",
    "MeetingAttendee",
    "PartnershipMeeting",
    "AlertPreference",
    "OutboxEmail",
    "SchedulerRun",
    "ApiToken",
    "AuditEvent",
    "AuditPersonalValue",
    "Base",
    "Deadline",
    "Attachment",
    "Bundle",
    "BundleAccess",
    "BundleBlocker",
    "BundleComment",
    "BundleItem",
    "BundleRedaction",
    "Incident",
    "IncidentImportRejection",
    "IncidentImportRun",
    "IncidentPerson",
    "PremisesIncidentLink",
    "Recommendation",
    "Letter",
    "LetterTemplate",
    "LetterTemplateVersion",
    "LicensingAuthority",
    "Premises",
    "RegisterImportRejection",
    "RegisterImportRun",
    "ReviewApplication",
    "User",
    "CalendarFeed",
    "Visit",
]
