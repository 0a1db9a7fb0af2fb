"""Prevention (issue #9): action plans, their items, and partnership meetings.

- action_plans: what a licence holder/DPS agreed, with agreed and review dates and a
  derived status; at most one open plan per premises (a partial unique index).
- action_plan_items: each agreed step with its owner, due date and status.
- partnership_meetings (per premises or per licensing authority's area), their
  attendees by organisation, and their actions (which can become plan items).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_OPEN_PLAN = "status = 'open'"


def upgrade() -> None:
    """Create the meeting, plan and item tables (written by hand)."""
    op.create_table(
        "partnership_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("premises_id", sa.Integer(), nullable=True),
        sa.Column("authority_id", sa.Integer(), nullable=True),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("minutes", sa.Text(), nullable=False),
        sa.Column("decisions", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "premises_id IS NOT NULL OR authority_id IS NOT NULL",
            name=op.f("ck_partnership_meetings_premises_or_area"),
        ),
        sa.ForeignKeyConstraint(
            ["premises_id"],
            ["premises.id"],
            name=op.f("fk_partnership_meetings_premises_id_premises"),
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"],
            ["licensing_authorities.id"],
            name=op.f("fk_partnership_meetings_authority_id_licensing_authorities"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_partnership_meetings_created_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partnership_meetings")),
    )
    op.create_index(
        op.f("ix_partnership_meetings_premises_id"), "partnership_meetings", ["premises_id"]
    )
    op.create_index(
        op.f("ix_partnership_meetings_authority_id"), "partnership_meetings", ["authority_id"]
    )
    op.create_index("ix_partnership_meetings_held_on", "partnership_meetings", ["held_on"])

    op.create_table(
        "meeting_attendees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("organisation", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["partnership_meetings.id"],
            name=op.f("fk_meeting_attendees_meeting_id_partnership_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_attendees")),
    )
    op.create_index(op.f("ix_meeting_attendees_meeting_id"), "meeting_attendees", ["meeting_id"])

    op.create_table(
        "action_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("premises_id", sa.Integer(), nullable=False),
        sa.Column("agreed_on", sa.Date(), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=False),
        sa.Column("agreed_with", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["premises_id"], ["premises.id"], name=op.f("fk_action_plans_premises_id_premises")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["partnership_meetings.id"],
            name=op.f("fk_action_plans_meeting_id_partnership_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_action_plans_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_plans")),
    )
    op.create_index(op.f("ix_action_plans_premises_id"), "action_plans", ["premises_id"])
    op.create_index("ix_action_plans_status_review_on", "action_plans", ["status", "review_on"])
    op.create_index(
        "ux_action_plans_one_open_per_premises",
        "action_plans",
        ["premises_id"],
        unique=True,
        sqlite_where=sa.text(ONE_OPEN_PLAN),
        postgresql_where=sa.text(ONE_OPEN_PLAN),
    )

    op.create_table(
        "action_plan_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(), nullable=True),
        sa.Column("status_changed_by_id", sa.Integer(), nullable=True),
        sa.Column("status_visit_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["action_plans.id"], name=op.f("fk_action_plan_items_plan_id_action_plans")
        ),
        sa.ForeignKeyConstraint(
            ["status_changed_by_id"],
            ["users.id"],
            name=op.f("fk_action_plan_items_status_changed_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["status_visit_id"],
            ["visits.id"],
            name=op.f("fk_action_plan_items_status_visit_id_visits"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_plan_items")),
    )
    op.create_index(op.f("ix_action_plan_items_plan_id"), "action_plan_items", ["plan_id"])
    op.create_index("ix_action_plan_items_status_due_on", "action_plan_items", ["status", "due_on"])

    op.create_table(
        "meeting_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("premises_id", sa.Integer(), nullable=True),
        sa.Column("plan_item_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["partnership_meetings.id"],
            name=op.f("fk_meeting_actions_meeting_id_partnership_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["premises_id"], ["premises.id"], name=op.f("fk_meeting_actions_premises_id_premises")
        ),
        sa.ForeignKeyConstraint(
            ["plan_item_id"],
            ["action_plan_items.id"],
            name=op.f("fk_meeting_actions_plan_item_id_action_plan_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_actions")),
        sa.UniqueConstraint("plan_item_id", name=op.f("uq_meeting_actions_plan_item_id")),
    )
    op.create_index(op.f("ix_meeting_actions_meeting_id"), "meeting_actions", ["meeting_id"])


def downgrade() -> None:
    """Drop the tables, dependants first."""
    op.drop_index(op.f("ix_meeting_actions_meeting_id"), table_name="meeting_actions")
    op.drop_table("meeting_actions")
    op.drop_index("ix_action_plan_items_status_due_on", table_name="action_plan_items")
    op.drop_index(op.f("ix_action_plan_items_plan_id"), table_name="action_plan_items")
    op.drop_table("action_plan_items")
    op.drop_index("ux_action_plans_one_open_per_premises", table_name="action_plans")
    op.drop_index("ix_action_plans_status_review_on", table_name="action_plans")
    op.drop_index(op.f("ix_action_plans_premises_id"), table_name="action_plans")
    op.drop_table("action_plans")
    op.drop_index(op.f("ix_meeting_attendees_meeting_id"), table_name="meeting_attendees")
    op.drop_table("meeting_attendees")
    op.drop_index("ix_partnership_meetings_held_on", table_name="partnership_meetings")
    op.drop_index(op.f("ix_partnership_meetings_authority_id"), table_name="partnership_meetings")
    op.drop_index(op.f("ix_partnership_meetings_premises_id"), table_name="partnership_meetings")
    op.drop_table("partnership_meetings")
