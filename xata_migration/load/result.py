"""What a load did: its counts, for the metadata and the checks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoadResult:
    source_rows: int = 0
    new_ids: int = 0
    inserted: int = 0
    updated: int = 0
    created_table: bool = False
    nulled_missing: dict[str, int] = field(default_factory=dict)
    skipped_rows: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    deleted_in_source: int = 0
    deleted_in_target: int = 0
    target_rows: int = 0
    rows_read: int = 0              # source rows read: all, or on a delta those written since
    delta_since: object = None      # the watermark a delta read from (None: a full load)
    ranges: int = 1                 # source sessions that read it at once (load/split.py)
    source_as_of: object = None     # the time of the source snapshot the rows were read in
    seconds: dict[str, float] = field(default_factory=dict)
    objects_made: list[str] = field(default_factory=list)  # constraints and indexes made

    @property
    def unchanged(self) -> int:
        return self.source_rows - self.skipped_rows - self.inserted - self.updated
