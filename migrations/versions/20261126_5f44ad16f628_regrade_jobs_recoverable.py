"""regrade jobs recoverable: their submissions, those passed over, last progress; verdicts
indexed by their regrade job

Revision ID: 5f44ad16f628
Revises: bab95813a235
Create Date: 2026-11-26 05:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5f44ad16f628"
down_revision: str | None = "bab95813a235"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("regrade_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submission_ids", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("passed_over", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # Existing jobs last progressed when they last changed state, as far as anyone knows.
    op.execute("UPDATE regrade_jobs SET updated_at = COALESCE(finished_at, started_at, created_at)")
    with op.batch_alter_table("regrade_jobs", schema=None) as batch_op:
        batch_op.alter_column(
            "updated_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
    op.create_index(
        op.f("ix_submission_verdicts_regrade_job_id"),
        "submission_verdicts",
        ["regrade_job_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index(op.f("ix_submission_verdicts_regrade_job_id"), table_name="submission_verdicts")
    with op.batch_alter_table("regrade_jobs", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("passed_over")
        batch_op.drop_column("submission_ids")
