"""The tables of the OpenAI-compatible server: items stored once, responses and
conversations holding ordered lists of item ids (item_lists), and API keys (hashes only).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("previous_response_id", sa.String(200), nullable=True),
        sa.Column("conversation_id", sa.String(200), nullable=True),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_responses_tenant_created_at", "responses", ["tenant", "created_at"])
    op.create_table(
        "item_lists",
        sa.Column("owner_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
    )
    op.create_index("ix_item_lists_owner_item", "item_lists", ["owner_id", "kind", "item_id"])
    op.create_index("ix_item_lists_tenant_item", "item_lists", ["tenant", "item_id"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("next_position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("conversations")
    op.drop_index("ix_item_lists_tenant_item", table_name="item_lists")
    op.drop_index("ix_item_lists_owner_item", table_name="item_lists")
    op.drop_table("item_lists")
    op.drop_index("ix_responses_tenant_created_at", table_name="responses")
    op.drop_table("responses")
    op.drop_table("items")
