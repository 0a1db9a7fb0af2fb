"""Deadlines of review applications, stored with the rule that produced them; the dates
of hearings, interim steps, notification and appeals on the review application.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("premises_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["premises_id"], ["premises.id"], name=op.f("fk_deadlines_premises_id_premises")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["review_applications.id"],
            name=op.f("fk_deadlines_review_id_review_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
        sa.UniqueConstraint("review_id", "kind", name=op.f("uq_deadlines_review_id_kind")),
    )
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadlines_premises_id"), ["premises_id"], unique=False)
        batch_op.create_index("ix_deadlines_status_due_date", ["status", "due_date"], unique=False)

    with op.batch_alter_table("review_applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hearing_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("interim_steps_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("interim_steps", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("decision_notified_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("appeal_lodged_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("appeal_decided_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("appeal_outcome", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_applications", schema=None) as batch_op:
        for column in (
            "appeal_outcome",
            "appeal_decided_on",
            "appeal_lodged_on",
            "decision_notified_on",
            "interim_steps",
            "interim_steps_at",
            "hearing_date",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_deadlines_status_due_date")
        batch_op.drop_index(batch_op.f("ix_deadlines_premises_id"))

    op.drop_table("deadlines")
