"""Flow runs: a head row per run and a row per finished step, written at each boundary.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("flow", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_state", sa.String(200), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(200), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index("ix_flow_runs_tenant_created_at", "flow_runs", ["tenant", "created_at"])
    op.create_index("ix_flow_runs_tenant_status", "flow_runs", ["tenant", "status"])
    op.create_table(
        "flow_run_steps",
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("data", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("flow_run_steps")
    op.drop_index("ix_flow_runs_tenant_status", "flow_runs")
    op.drop_index("ix_flow_runs_tenant_created_at", "flow_runs")
    op.drop_table("flow_runs")
