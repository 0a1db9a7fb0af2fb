"""Visits to premises and their findings.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# At most one proposed visit per premises (a partial unique index on both databases).
ONE_PROPOSED = "status = 'proposed'"


def upgrade() -> None:
    """Create the visits and calendar_feeds tables (written by hand)."""
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("premises_id", sa.Integer(), nullable=False),
        sa.Column("visit_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(), nullable=True),
        sa.Column("policy_due_date", sa.Date(), nullable=True),
        sa.Column("policy_rule", sa.Text(), nullable=True),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("visited_at", sa.DateTime(), nullable=True),
        sa.Column("findings_crime_and_disorder", sa.Text(), nullable=False),
        sa.Column("findings_public_safety", sa.Text(), nullable=False),
        sa.Column("findings_public_nuisance", sa.Text(), nullable=False),
        sa.Column("findings_protection_of_children", sa.Text(), nullable=False),
        sa.Column("follow_up_actions", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["premises_id"], ["premises.id"], name=op.f("fk_visits_premises_id_premises")
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["users.id"], name=op.f("fk_visits_officer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_visits_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_visits_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    op.create_index("ix_visits_premises_id_status", "visits", ["premises_id", "status"])
    op.create_index("ix_visits_status_visit_date", "visits", ["status", "visit_date"])
    op.create_index(op.f("ix_visits_officer_id"), "visits", ["officer_id"])
    op.create_index(
        "ux_visits_one_proposed_per_premises",
        "visits",
        ["premises_id"],
        unique=True,
        sqlite_where=sa.text(ONE_PROPOSED),
        postgresql_where=sa.text(ONE_PROPOSED),
    )

    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_calendar_feeds_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
    )
    op.create_index(op.f("ix_calendar_feeds_user_id"), "calendar_feeds", ["user_id"])


def downgrade() -> None:
    """Drop the calendar_feeds and visits tables."""
    op.drop_index(op.f("ix_calendar_feeds_user_id"), table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
    op.drop_index("ux_visits_one_proposed_per_premises", table_name="visits")
    op.drop_index(op.f("ix_visits_officer_id"), table_name="visits")
    op.drop_index("ix_visits_status_visit_date", table_name="visits")
    op.drop_index("ix_visits_premises_id_status", table_name="visits")
    op.drop_table("visits")
