"""Prevention (issue #9): standard letter templates and issued letters.

- letter_templates: one row per standard letter (first warning, invitation to a meeting,
  action plan confirmation, "minded to review" notice), naming its current version;
  lock_version makes two admins' concurrent saves a conflict.
- letter_template_versions: every saved wording (subject and body), never changed; the
  migration seeds version 1 of each from licensing/letters/defaults.py.
- letters: each letter issued to a premises, with the template version it used, who
  issued it and when, and the SHA-256 and size of its PDF in the evidence store.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    templates = op.create_table(
        "letter_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_letter_templates"),
        sa.UniqueConstraint("key", name="uq_letter_templates_key"),
    )
    versions = op.create_table(
        "letter_template_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "template_id",
            sa.Integer(),
            sa.ForeignKey(
                "letter_templates.id",
                name="fk_letter_template_versions_template_id_letter_templates",
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_letter_template_versions_created_by_id_users"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_letter_template_versions"),
        sa.UniqueConstraint(
            "template_id", "version", name="uq_letter_template_versions_template_id_version"
        ),
    )
    op.create_table(
        "letters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "premises_id",
            sa.Integer(),
            sa.ForeignKey("premises.id", name="fk_letters_premises_id_premises"),
            nullable=False,
        ),
        sa.Column("template_key", sa.String(32), nullable=False),
        sa.Column(
            "template_version_id",
            sa.Integer(),
            sa.ForeignKey(
                "letter_template_versions.id",
                name="fk_letters_template_version_id_letter_template_versions",
            ),
            nullable=False,
        ),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column(
            "issued_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_letters_issued_by_id_users"),
            nullable=False,
        ),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_letters"),
    )
    op.create_index(
        "ix_letters_premises_id_issued_at", "letters", ["premises_id", "issued_at"], unique=False
    )

    # The default wording (plain data, no ORM), seeded as version 1 of each letter.
    from licensing.letters.defaults import DEFAULT_TEMPLATES

    connection = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None)
    for default in DEFAULT_TEMPLATES:
        connection.execute(
            templates.insert().values(
                key=default.key,
                title=default.title,
                current_version=1,
                updated_at=now,
                lock_version=1,
            )
        )
        template_id = connection.scalar(
            sa.select(templates.c.id).where(templates.c.key == default.key)
        )
        connection.execute(
            versions.insert().values(
                template_id=template_id,
                version=1,
                subject=default.subject,
                body=default.body,
                created_by_id=None,
                created_at=now,
            )
        )


def downgrade() -> None:
    op.drop_index("ix_letters_premises_id_issued_at", table_name="letters")
    op.drop_table("letters")
    op.drop_table("letter_template_versions")
    op.drop_table("letter_templates")
