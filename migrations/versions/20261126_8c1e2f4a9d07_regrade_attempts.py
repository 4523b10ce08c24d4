"""regrade attempts: each submission's tries for a regrade job, so that one failing every time
is given up

Revision ID: 8c1e2f4a9d07
Revises: 5f44ad16f628
Create Date: 2026-11-26 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8c1e2f4a9d07"
down_revision: str | None = "5f44ad16f628"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "regrade_attempts",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["regrade_jobs.id"],
            name=op.f("fk_regrade_attempts_job_id_regrade_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_regrade_attempts_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "submission_id", name=op.f("pk_regrade_attempts")),
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("regrade_attempts")
