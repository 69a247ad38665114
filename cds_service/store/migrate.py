"""Bring an existing database up to ``schema``: add the tables, columns and indexes it lacks.

``create_all`` makes missing tables only; a column added to a table since a database was made
is added here with ``ALTER TABLE ... ADD COLUMN`` and its server default, which every old row
then reads (``schema`` documents what each default means for old rows). Columns are never
dropped or changed. Safe for workers starting together: whoever loses a race finds the column
there when it retries (``database._create_tables``).
"""

from __future__ import annotations

from sqlalchemy import Column, Engine, inspect
from sqlalchemy.schema import CreateColumn

from .schema import metadata


def upgrade(engine: Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table in metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    _check_addable(column)
                    ddl = CreateColumn(column).compile(dialect=engine.dialect)
                    connection.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)


def _check_addable(column: Column[object]) -> None:
    """A NOT NULL column without a server default cannot be added to a table with rows."""
    if not column.nullable and column.server_default is None:
        raise RuntimeError(
            f"column {column.table.name}.{column.name} is new, NOT NULL and has no server "
            "default: existing rows could not be kept"
        )
