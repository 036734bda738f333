"""Move a Xata-shaped PostgreSQL database to plain PostgreSQL with bigint ids.

The public surface is small: introspect a source into a Plan, save/load it as YAML,
and build Dagster definitions from it. Everything else is the core behind them.
"""

from xata_migration.plan import Plan, load_plan, save_plan

__all__ = ["Plan", "load_plan", "save_plan"]
