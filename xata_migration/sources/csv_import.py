"""Load a legacy Xata CSV export (one file per table, plus the schema file) into a
Xata-shaped PostgreSQL database; `plan` and `migrate_all` then read it like any other.

The export's format is not documented; what this module decides (README, "CSV exports"):
- A file is `<table>.csv` (UTF-8, optional BOM), with the header `id`, `xata.createdAt`,
  `xata.updatedAt`, `xata.version`, then the table's columns. A column of the schema that
  the header lacks gets its default (or NULL) on every row; a header the schema lacks is
  an error, as is a row with fewer or more fields than the header.
- An empty field is NULL, except in a `notNull` string/email/text column, where it is the
  empty string (Xata could not have stored NULL there). CSV cannot tell `""` from nothing.
- `multiple`, `vector`, `json`, `file`, `file[]` (and `object` kept whole) are JSON text.
  Datetimes are ISO 8601; one without an offset is UTC, as Xata stored them.
- Links become text columns with a `{"xata.link": T}` comment and no FOREIGN KEY, so ids
  that point nowhere are loaded as they are and the plan's `on_missing` decides.
- The deprecated `object` type is one jsonb column (`--objects jsonb`, the header has
  `address` holding JSON) or one column per field (`--objects columns`, the header has
  `address.street`, ...). The plan's `note` says which.

Files are read in chunks with pandas (bounded memory) and written with COPY, each table
in a savepoint of one transaction: a value that does not parse is reported with its file,
line, column and value, and then nothing at all is loaded.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from xata_migration.connections import connect
from xata_migration.errors import XataMigrationError
from xata_migration.masking import mask_url
from xata_migration.sources.xata_shape import XATA_TYPES, create_tables, require_empty

# header -> staging column; the alternatives are how newer exports spell them
METADATA_HEADERS = {
    "id": "xata_id", "xata_id": "xata_id",
    "xata.createdAt": "xata_createdat", "xata_createdat": "xata_createdat",
    "xata.updatedAt": "xata_updatedat", "xata_updatedat": "xata_updatedat",
    "xata.version": "xata_version", "xata_version": "xata_version",
}
OBJECT_MODES = ("jsonb", "columns")
MAX_REPORTED = 20  # bad values reported per file
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.I)
_STRING_TYPES = ("string", "email", "text")


class CsvImportError(XataMigrationError, RuntimeError):
    """The export could not be loaded; the database is as it was."""


@dataclass
class BadValue:
    file: str
    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        return f"{self.file}, line {self.line}, column {self.column!r}: {shown!r} {self.reason}"


@dataclass
class CsvImport:
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the schema file


def read_schema(path: str | Path, objects: str = "jsonb") -> dict:
    """The schema file, checked, with `object` columns as the chosen mode stores them."""
    path = Path(path)
    try:
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise CsvImportError(f"No schema file at {str(path)!r}.") from None
    except json.JSONDecodeError as error:
        raise CsvImportError(f"{path.name} is not JSON: {error}.") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("tables"), list):
        raise CsvImportError(f"{path.name} has no `tables` list: is it a Xata schema file "
                             "(`xata schema dump` or schema.json)?")
    if objects not in OBJECT_MODES:
        raise CsvImportError(f"--objects must be one of {OBJECT_MODES}, not {objects!r}.")
    tables = []
    for table in schema["tables"]:
        columns = [c for column in table.get("columns", [])
                   for c in _stored_columns(table["name"], column, objects)]
        tables.append({**table, "columns": columns})
    return {**schema, "tables": tables}


def _stored_columns(table: str, column: dict, objects: str, prefix: str = "") -> list[dict]:
    kind = column.get("type")
    if kind not in XATA_TYPES:
        raise CsvImportError(f"Table {table!r}, column {column.get('name')!r}: unknown Xata "
                             f"type {kind!r} (known: {', '.join(XATA_TYPES)}).")
    if kind == "link" and not (column.get("link") or {}).get("table"):
        raise CsvImportError(f"Table {table!r}, column {column['name']!r}: a link needs "
                             "`link: {table: ...}`.")
    if kind == "vector" and not (column.get("vector") or {}).get("dimension"):
        raise CsvImportError(f"Table {table!r}, column {column['name']!r}: a vector needs "
                             "`vector: {dimension: N}`.")
    name = prefix + column["name"]
    if kind == "object" and objects == "columns":
        fields = [c for nested in column.get("columns", [])
                  for c in _stored_columns(table, nested, objects, name + ".")]
        return [{**c, "object": c.get("object", name)} for c in fields]
    return [{**column, "name": name}]


def _note_objects(conn: psycopg.Connection, schema: dict) -> None:
    """Column comments that introspection turns into the plan's `note`."""
    for table in schema["tables"]:
        for column in table["columns"]:
            if column["type"] == "object":
                note = {"xata.type": "object"}
            elif "object" in column:
                note = {"xata.object": column["object"]}
            else:
                continue
            conn.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                sql.Identifier(table["name"]), sql.Identifier(column["name"]),
                sql.Literal(json.dumps(note))))


# ---------------------------------------------------------------- values


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not JSON ({error.msg})") from None


def _parse(column: dict, text: str):
    """The value to COPY for one non-empty field, or ValueError(reason)."""
    kind = column["type"]
    if kind in _STRING_TYPES:
        if kind != "text" and len(text) > 2048:
            raise ValueError(f"is {len(text)} characters; a Xata {kind} holds at most 2048")
        return text
    if kind == "link":
        if len(text) >= 256:
            raise ValueError("is not a Xata record id (at most 255 characters)")
        return text
    if kind == "int":
        if not _INTEGER.fullmatch(text) or not -2**63 <= int(text) < 2**63:
            raise ValueError("is not an integer (bigint)")
        return int(text)
    if kind == "float":
        if not _FLOAT.fullmatch(text.strip()):
            raise ValueError("is not a number")
        return float(text)
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError("is not true or false")
        return text.lower() == "true"
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("is not an ISO 8601 date and time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return _parse_json_kind(column, text)


def _parse_json_kind(column: dict, text: str):
    kind, value = column["type"], _json(text)
    if kind == "multiple":
        if not isinstance(value, list) or not all(v is None or isinstance(v, str)
                                                  for v in value):
            raise ValueError('is not a JSON array of strings, e.g. ["a", "b"]')
        return value
    if kind == "vector":
        dimension = column["vector"]["dimension"]
        if not isinstance(value, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ValueError("is not a JSON array of numbers")
        if len(value) != dimension:
            raise ValueError(f"has {len(value)} numbers; the vector has {dimension}")
        return [float(v) for v in value]
    if kind == "file" and not isinstance(value, dict):
        raise ValueError("is not a JSON object (a Xata file)")
    if kind == "file[]" and not (isinstance(value, list)
                                 and all(isinstance(v, dict) for v in value)):
        raise ValueError("is not a JSON array of objects (Xata files)")
    return text  # json, object, file, file[]: PostgreSQL keeps the JSON as written


def _value(column: dict, text: str):
    if text == "":
        if column["type"] in _STRING_TYPES and column.get("notNull"):
            return ""
        if column.get("notNull"):
            raise ValueError("is empty, and the column is notNull")
        return None
    return _parse(column, text)


# ---------------------------------------------------------------- files


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as file:
        try:
            return next(csv.reader(file))
        except StopIteration:
            raise CsvImportError(f"{path.name} is empty: it has no header line.") from None
        except UnicodeDecodeError as error:
            raise CsvImportError(f"{path.name} is not UTF-8 text ({error}).") from None


def _columns_for(path: Path, table: dict, result: CsvImport) -> list[dict]:
    """The schema column behind each header field, in header order."""
    header = _header(path)
    by_name = {c["name"]: c for c in table["columns"]}
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise CsvImportError(f"{path.name}: the header names {duplicates} more than once.")
    columns = []
    for name in header:
        if name in METADATA_HEADERS:
            staged = METADATA_HEADERS[name]
            kind = "int" if staged == "xata_version" else (
                "link" if staged == "xata_id" else "datetime")
            columns.append({"name": staged, "type": kind, "notNull": True, "header": name})
        elif name in by_name:
            columns.append({**by_name[name], "header": name})
        else:
            raise CsvImportError(_unknown_header(path, table, name))
    staged = {c["name"] for c in columns}
    if "xata_id" not in staged:
        raise CsvImportError(f"{path.name}: the header has no `id` column, so its rows "
                             "cannot keep their Xata ids.")
    for name in ("xata_createdat", "xata_updatedat", "xata_version"):
        if name not in staged:
            result.warnings.append(f"{path.name}: no {name} column; every row gets the "
                                   "default (now() / 0).")
    for column in table["columns"]:
        if column["name"] not in staged:
            result.warnings.append(f"{path.name}: no column {column['name']!r}; every row "
                                   "gets its default value (or NULL).")
    return columns


def _unknown_header(path: Path, table: dict, name: str) -> str:
    objects = {c["name"] for c in table["columns"] if c["type"] == "object"}
    if name.split(".")[0] in objects:
        return (f"{path.name}: the header has {name!r}, a field of an object column: load "
                "this export with --objects columns.")
    if any(c.get("object") == name for c in table["columns"]):
        return (f"{path.name}: the header has the object column {name!r} whole: load this "
                "export with --objects jsonb.")
    return (f"{path.name}: the header has {name!r}, which table {table['name']!r} of the "
            "schema file does not have. Is it the right schema file? Nothing was loaded.")


def _records(path: Path, chunk_rows: int):
    """(line, fields) for every record; `line` is where the record starts in the file.
    The python engine tells a short row (NaN) from an empty field ('')."""
    line = 2
    chunks = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[],
                         skip_blank_lines=False, engine="python", chunksize=chunk_rows,
                         encoding="utf-8-sig")
    for chunk in chunks:
        for fields in chunk.itertuples(index=False, name=None):
            yield line, fields
            line += 1 + sum(f.count("\n") for f in fields if isinstance(f, str))


def _load_file(conn, path: Path, table: dict, columns: list[dict], chunk_rows: int):
    """COPY the file's rows into its table; returns (rows, bad values)."""
    bad: list[BadValue] = []
    rows = 0
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table["name"]),
        sql.SQL(", ").join(sql.Identifier(c["name"]) for c in columns))
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for line, fields in _records(path, chunk_rows):
            if all(isinstance(f, float) and math.isnan(f) for f in fields):
                continue  # a blank line
            values = _row_values(path, line, columns, fields, bad)
            if values is not None and not bad:
                copy.write_row(values)
                rows += 1
            if len(bad) >= MAX_REPORTED:
                break
    return rows, bad


def _row_values(path, line, columns, fields, bad):
    values = []
    for column, text in zip(columns, fields):
        if not isinstance(text, str):
            bad.append(BadValue(path.name, line, column["header"], "",
                                "is missing: the row has fewer fields than the header"))
            return None
        try:
            values.append(_value(column, text))
        except ValueError as reason:
            bad.append(BadValue(path.name, line, column["header"], text, str(reason)))
    return values


# ---------------------------------------------------------------- the import


def _files_for(folder: Path, schema: dict) -> dict[str, Path]:
    if not folder.is_dir():
        raise CsvImportError(f"No folder at {str(folder)!r}.")
    tables = [t["name"] for t in schema["tables"]]
    files = {name: folder / f"{name}.csv" for name in tables}
    missing = [str(path.name) for path in files.values() if not path.is_file()]
    extra = sorted(p.name for p in folder.glob("*.csv") if p.stem not in tables)
    if missing:
        raise CsvImportError(f"No CSV file for {len(missing)} table(s) of the schema: "
                             f"{', '.join(missing)} in {folder}. Export every table (an "
                             "empty table exports as a header line).")
    if extra:
        raise CsvImportError(f"{', '.join(extra)} in {folder} belong to no table of the "
                             "schema file. Is it the right schema file?")
    return files


def import_csv(folder: str | Path, schema_path: str | Path, url: str,
               objects: str = "jsonb", chunk_rows: int = 5000) -> CsvImport:
    """Load every table's CSV file into the empty database at `url`, all or nothing."""
    schema = read_schema(schema_path, objects)
    files = _files_for(Path(folder), schema)
    require_empty(url, CsvImportError)
    result, problems = CsvImport(), []
    with connect(url, "target") as conn, conn.transaction():
        create_tables(conn, schema, foreign_keys=False)
        _note_objects(conn, schema)
        for table in schema["tables"]:
            path = files[table["name"]]
            columns = _columns_for(path, table, result)
            has_vectors = any(c["type"] == "vector" for c in columns)
            rows = chunk_rows // 20 if has_vectors else chunk_rows
            problems += _load_table(conn, path, table, columns, max(rows, 1), result)
        if problems:
            raise CsvImportError(
                f"Nothing was loaded into {mask_url(url)}: {len(problems)} problem(s).\n  "
                + "\n  ".join(problems))
    return result


def _load_table(conn, path, table, columns, chunk_rows, result) -> list[str]:
    """One savepoint per table, so every file is checked before anything is kept."""
    try:
        with conn.transaction():
            rows, bad = _load_file(conn, path, table, columns, chunk_rows)
            if bad:
                raise psycopg.Rollback()
    except pd.errors.ParserError as error:
        return [f"{path.name}: not a well-formed CSV file ({error})."]
    except UnicodeDecodeError as error:
        return [f"{path.name}: not UTF-8 text ({error})."]
    except psycopg.Error as error:
        detail = str(error).strip().splitlines()
        return [f"{path.name}: PostgreSQL refused a row: {detail[0]} "
                + " ".join(d for d in detail[1:] if d.startswith("DETAIL"))]
    result.rows[table["name"]] = rows
    return [str(b) for b in bad]
