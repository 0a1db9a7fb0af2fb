"""Which of the premises page's casework sections have anything to show, asked in one
statement before they are read.

Most premises have no review application, open recommendation, deadline, action plan,
letter or bundle: the page would send six reads that find nothing. It asks first, with
one statement of six EXISTS, and sends only the reads that will find something. Each
EXISTS is made by its section's own module from that section's read (`db.exists_of`),
so the question asked is always the read's own WHERE.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.actionplans.services import ANY_PLAN
from licensing.deadlines.services import ANY_DEADLINE
from licensing.evidence.services import ANY_BUNDLE
from licensing.incidents.recommendations import ANY_OPEN_RECOMMENDATION
from licensing.letters.services import ANY_LETTER
from licensing.premises.services import ANY_OPEN_OR_DETERMINED_REVIEW


@dataclass(frozen=True)
class Sections:
    """For one premises, whether each section's read would find anything."""

    reviews: bool  # an open or determined review application
    recommendations: bool  # an open recommendation
    deadlines: bool
    action_plans: bool
    letters: bool
    bundles: bool  # any bundle, whoever may open it


# Built once (see licensing.db): every premises page sends it.
_SECTIONS = select(
    ANY_OPEN_OR_DETERMINED_REVIEW.label("reviews"),
    ANY_OPEN_RECOMMENDATION.label("recommendations"),
    ANY_DEADLINE.label("deadlines"),
    ANY_PLAN.label("action_plans"),
    ANY_LETTER.label("letters"),
    ANY_BUNDLE.label("bundles"),
)


def sections_with_rows(session: Session, premises_id: int) -> Sections:
    """Which of the premises' casework sections have rows to read (one statement)."""
    row = session.execute(_SECTIONS, {"premises_id": premises_id}).one()
    return Sections(*(bool(value) for value in row))
