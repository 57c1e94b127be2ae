"""A load's crime counts made from the rows it writes, as it writes them, instead of read back at its end.

The counts (:mod:`crimemap.store.stats_plan`) of every (month, force) set a
load replaces are made again in the load's transaction. Made from the stored
crimes, that is one more read of every crime the load wrote, grouped by six
keys: a sort of the whole load, done alone at its very end (about a ninth of
the ADBC driver's process's CPU on the 6M-crime archive, while nothing else
could run). The rows a load writes are already Arrow columns in the writing
process, so each chunk is grouped there as it goes by (pyarrow's hash
aggregation, beside the parsing and the driver's inserts), and the end only
inserts the summed groups.

Only the sets whose every stored crime came through :meth:`LoadCounts.add`
are counted so: a set replaced twice in one load, or whose crimes reached
the store another way, is left to the store's read-back (:meth:`LoadCounts.counted`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from crimemap import geo
from crimemap.store.stats_plan import LEVELS

_ROW_SHIFT = geo.ROW_SPAN.bit_length() - 1
_COL_MASK = geo.ROW_SPAN - 1
_FINE = ["month", "force", "category", "outcome", "row", "col"]
_SET_KEY = 1 << 16
"""A (month, force) set as one integer, ``month * _SET_KEY + force`` (force codes are small)."""


class LoadCounts:
    """The counts of the crimes one load writes, grouped chunk by chunk (see the module docstring)."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._sets: set[tuple[int, int]] = set()
        self._spoilt: set[tuple[int, int]] = set()

    def replacing(self, month: int, forces: Iterable[int]) -> None:
        """The load is about to replace these sets: a set replaced before in this load cannot be counted here."""
        for force in forces:
            key = (month, force)
            if key in self._sets:
                self._spoilt.add(key)
            self._sets.add(key)

    def add(self, month: pa.Array, force: pa.Array, category: pa.Array, outcome: pa.Array, cell: pa.Array) -> None:
        """Group one chunk of written crimes (integer columns; ``outcome`` null for none, ``cell`` -1 unlocated)."""
        if not len(cell):
            return
        month, force, category, outcome, cell = (c.cast(pa.int64()) for c in (month, force, category, outcome, cell))
        located = pc.greater_equal(cell, 0)
        none = pa.scalar(None, pa.int64())
        fine = pa.table(
            {
                "month": month, "force": force, "category": category, "outcome": pc.fill_null(outcome, -1),
                "row": pc.if_else(located, pc.shift_right(pc.shift_right(cell, _ROW_SHIFT), LEVELS[0]), none),
                "col": pc.if_else(located, pc.shift_right(pc.bit_wise_and(cell, _COL_MASK), LEVELS[0]), none),
            }
        )  # fmt: skip
        self._parts.append(fine.group_by(_FINE, use_threads=False).aggregate([([], "count_all")]))

    def counted(self, replaced: Iterable[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``replaced`` split into the sets counted here and those the store must count from its crimes."""
        here: list[tuple[int, int]] = []
        there: list[tuple[int, int]] = []
        for key in replaced:
            (here if key in self._sets and key not in self._spoilt else there).append(key)
        return here, there

    def tables(self, sets: Iterable[tuple[int, int]]) -> dict[str, pa.Table]:
        """Rows of ``stats_totals``, ``stats_outcomes`` and ``stats_cells`` for ``sets``, in their columns' order."""
        keys = pa.array([m * _SET_KEY + f for m, f in sets], pa.int64())
        parts = [p.filter(pc.is_in(_set_keys(p), keys)) for p in self._parts]
        fine = pa.concat_tables(parts) if parts else _empty()
        fine = fine.group_by(_FINE, use_threads=False).aggregate([("count_all", "sum")])
        crimes = "count_all_sum"
        out = {
            "stats_totals": _sum(fine, ["month", "force", "category"], crimes),
            "stats_outcomes": _sum(fine, ["month", "force", "category", "outcome"], crimes),
        }
        located = fine.filter(pc.is_valid(fine["row"]))
        cells = []
        for level in LEVELS:
            shift = level - LEVELS[0]
            coarse = located.set_column(4, "row", pc.shift_right(located["row"], shift))
            coarse = coarse.set_column(5, "col", pc.shift_right(coarse["col"], shift))
            summed = _sum(coarse, ["month", "row", "col", "force", "category"], crimes)
            cells.append(summed.add_column(0, "level", pa.array([level] * summed.num_rows, pa.int64())))
        out["stats_cells"] = pa.concat_tables(cells)
        return out


def _set_keys(table: pa.Table) -> pa.Array:
    return pc.add(pc.multiply(table["month"], _SET_KEY), table["force"])


def _sum(table: pa.Table, keys: list[str], column: str) -> pa.Table:
    """``table`` summed by ``keys``, as columns ``keys + ["crimes"]``."""
    summed = table.group_by(keys, use_threads=False).aggregate([(column, "sum")])
    return summed.select([*keys, f"{column}_sum"]).rename_columns([*keys, "crimes"])


def _empty() -> pa.Table:
    return pa.table({**{k: pa.array([], pa.int64()) for k in _FINE}, "count_all": pa.array([], pa.int64())})


__all__ = ["LoadCounts"]
