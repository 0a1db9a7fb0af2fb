"""Attachments and evidence bundles; a review application records the bundle it relies on.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "bundles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("premises_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("review_kind", sa.String(length=16), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("built_by_id", sa.Integer(), nullable=True),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.Column("generator_version", sa.String(length=32), nullable=False),
        sa.Column("audit_chain", sa.String(length=64), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_head_hash", sa.String(length=64), nullable=False),
        sa.Column("police_pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("police_zip_sha256", sa.String(length=64), nullable=False),
        sa.Column("shared_pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("shared_zip_sha256", sa.String(length=64), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("index_json", sa.Text(), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
        sa.Column("shared_by_id", sa.Integer(), nullable=True),
        sa.Column("shared_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"], ["users.id"], name=op.f("fk_bundles_acknowledged_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["built_by_id"], ["users.id"], name=op.f("fk_bundles_built_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_bundles_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["premises_id"], ["premises.id"], name=op.f("fk_bundles_premises_id_premises")
        ),
        sa.ForeignKeyConstraint(
            ["shared_by_id"], ["users.id"], name=op.f("fk_bundles_shared_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundles")),
        sa.UniqueConstraint("reference", "version", name=op.f("uq_bundles_reference_version")),
    )
    with op.batch_alter_table("bundles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundles_premises_id"), ["premises_id"], unique=False)

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("holds_personal_data", sa.Boolean(), nullable=False),
        sa.Column("redacted_copy_of_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_attachments_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["redacted_copy_of_id"],
            ["attachments.id"],
            name=op.f("fk_attachments_redacted_copy_of_id_attachments"),
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_attachments_uploaded_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_attachments_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attachments_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attachments_redacted_copy_of_id"), ["redacted_copy_of_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_attachments_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "bundle_accesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"], ["bundles.id"], name=op.f("fk_bundle_accesses_bundle_id_bundles")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_bundle_accesses_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_accesses")),
    )
    with op.batch_alter_table("bundle_accesses", schema=None) as batch_op:
        batch_op.create_index("ix_bundle_accesses_bundle_id_at", ["bundle_id", "at"], unique=False)

    op.create_table(
        "bundle_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"], ["bundles.id"], name=op.f("fk_bundle_comments_bundle_id_bundles")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_bundle_comments_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_comments")),
    )
    with op.batch_alter_table("bundle_comments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bundle_comments_bundle_id"), ["bundle_id"], unique=False
        )

    op.create_table(
        "bundle_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=160), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("included", sa.Boolean(), nullable=False),
        sa.Column("exclusion_reason", sa.Text(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bundle_id"], ["bundles.id"], name=op.f("fk_bundle_items_bundle_id_bundles")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_bundle_items_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_items")),
        sa.UniqueConstraint(
            "bundle_id", "kind", "ref_id", name=op.f("uq_bundle_items_bundle_id_kind_ref_id")
        ),
    )
    with op.batch_alter_table("bundle_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bundle_items_bundle_id_occurred_at", ["bundle_id", "occurred_at"], unique=False
        )

    op.create_table(
        "bundle_redactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=160), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"], ["bundles.id"], name=op.f("fk_bundle_redactions_bundle_id_bundles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_redactions")),
    )
    with op.batch_alter_table("bundle_redactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bundle_redactions_bundle_id"), ["bundle_id"], unique=False
        )

    op.create_table(
        "bundle_blockers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name=op.f("fk_bundle_blockers_attachment_id_attachments"),
        ),
        sa.ForeignKeyConstraint(
            ["bundle_id"], ["bundles.id"], name=op.f("fk_bundle_blockers_bundle_id_bundles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_blockers")),
    )
    with op.batch_alter_table("bundle_blockers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bundle_blockers_bundle_id"), ["bundle_id"], unique=False
        )

    with op.batch_alter_table("review_applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bundle_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_review_applications_bundle_id_bundles"), "bundles", ["bundle_id"], ["id"]
        )


def downgrade() -> None:

    with op.batch_alter_table("review_applications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_review_applications_bundle_id_bundles"), type_="foreignkey"
        )
        batch_op.drop_column("bundle_id")

    with op.batch_alter_table("bundle_blockers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_blockers_bundle_id"))

    op.drop_table("bundle_blockers")
    with op.batch_alter_table("bundle_redactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_redactions_bundle_id"))

    op.drop_table("bundle_redactions")
    with op.batch_alter_table("bundle_items", schema=None) as batch_op:
        batch_op.drop_index("ix_bundle_items_bundle_id_occurred_at")

    op.drop_table("bundle_items")
    with op.batch_alter_table("bundle_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_comments_bundle_id"))

    op.drop_table("bundle_comments")
    with op.batch_alter_table("bundle_accesses", schema=None) as batch_op:
        batch_op.drop_index("ix_bundle_accesses_bundle_id_at")

    op.drop_table("bundle_accesses")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_visit_id"))
        batch_op.drop_index(batch_op.f("ix_attachments_redacted_copy_of_id"))
        batch_op.drop_index(batch_op.f("ix_attachments_incident_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("bundles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundles_premises_id"))

    op.drop_table("bundles")
