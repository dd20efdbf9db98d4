"""``metrics.csv``: one row per logged training iteration, safe across crashes and resumes.

Columns are ``step`` followed by metric names in order of first appearance. When a metric that
was never logged before appears, the file is rewritten (atomically) with the wider header and
empty cells in older rows. Opening the file for a run that resumes from a checkpoint at
``start_step`` drops the rows logged after that checkpoint (they belong to the lost part of the
crashed run and would otherwise appear twice), and a half-written last line is discarded.
"""
from __future__ import annotations

import csv
import io
import math
import numbers
import os
from pathlib import Path
from typing import Any, Mapping

from .files import atomic_write_text


def format_value(value: Any) -> str:
    """A CSV cell: integers as integers, floats round-trippable (``repr``), ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def _parse_step(cell: str) -> float | None:
    try:
        step = float(cell)
    except (TypeError, ValueError):
        return None
    return step if math.isfinite(step) else None


class MetricsCSV:
    """Append-only writer of ``metrics.csv`` (see the module docstring).

    ``start_step`` is the step the run (re)starts from: existing rows with a larger step (and a
    torn last line) are removed. A fresh run (``start_step=0``) in a folder with an old
    ``metrics.csv`` therefore starts an empty table; a resumed run keeps the rows up to its
    checkpoint. With ``start_step=None`` the existing file is kept as it is (appending only).
    """

    def __init__(self, path: str | os.PathLike, start_step: int | None = None):
        self.path = Path(path)
        self.fields: list[str] = ["step"]
        self._fh: io.TextIOWrapper | None = None
        if self.path.exists():
            if start_step is None:
                self.fields = self._read_rows()[0]
            else:
                self._recover(start_step)

    # ------------------------------------------------------------------ reading / recovery
    def _read_rows(self) -> tuple[list[str], list[list[str]], bool]:
        """Header, complete data rows, and whether anything had to be discarded."""
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        dirty = False
        if text and not text.endswith("\n"):  # crash mid-line: drop the partial row
            text = text[: text.rfind("\n") + 1]
            dirty = True
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or not rows[0] or rows[0][0] != "step":
            return ["step"], [], True
        return rows[0], rows[1:], dirty

    def _recover(self, start_step: int) -> None:
        header, rows, dirty = self._read_rows()
        kept = []
        for row in rows:
            step = _parse_step(row[0]) if row else None
            if step is None or step > start_step or len(row) > len(header):
                dirty = True
                continue
            kept.append(row)
        self.fields = header
        if dirty or len(kept) != len(rows):
            self._write_all(header, kept)

    def _write_all(self, header: list[str], rows: list[list[str]]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row + [""] * (len(header) - len(row)))
        atomic_write_text(self.path, buf.getvalue())

    # ------------------------------------------------------------------ writing
    def append(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Append one row; widens the header (rewriting the file) for new metric names."""
        new = [k for k in metrics if k != "step" and k not in self.fields]
        if new or not self.path.exists():
            self._close_handle()
            _, rows, _ = self._read_rows() if self.path.exists() else (None, [], False)
            self.fields = self.fields + new
            self._write_all(self.fields, rows)
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
        row = [format_value(int(step))] + [format_value(metrics.get(k)) for k in self.fields[1:]]
        try:
            csv.writer(self._fh, lineterminator="\n").writerow(row)
            self._fh.flush()
        except OSError as exc:      # e.g. a full disk: name the file (a torn row is dropped on the next open)
            if exc.filename is None:
                exc.filename = str(self.path)
            raise

    def read(self) -> list[dict[str, str]]:
        """All rows as dicts (column -> cell text)."""
        return read_metrics(self.path)

    def _close_handle(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError:
                pass
        self._close_handle()


def read_metrics(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a ``metrics.csv`` as dicts (column -> cell text, ``""`` where not logged),
    without modifying the file; a torn last line is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))
