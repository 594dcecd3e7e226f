"""Labels of a recording: time intervals with a class name, from a label topic or a CSV file.

Label topic (std_msgs/Header, what sensor_sim publishes on sentryfuse/ground_truth): a message
starts an interval at its stamp with its frame_id as the class; the interval lasts until the next
label message (or the end of the recording). An empty frame_id ends the previous interval without
starting one (a pause that belongs to no class).

CSV: a header line and one row per interval, either
    start_s,end_s,label                 seconds on the recording's stamp clock (epoch seconds)
    start_offset_s,end_offset_s,label   seconds after the recording's first message
Intervals must not overlap; every problem is a LabelError naming the line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sentryfuse_ros.bags.stamps import NS_PER_S

ABSOLUTE, RELATIVE = ("start_s", "end_s", "label"), ("start_offset_s", "end_offset_s", "label")


class LabelError(ValueError):
    """Labels that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class LabelInterval:
    start_ns: int
    end_ns: int
    name: str


def intervals_from_topic(labels: list[tuple[int, str]], end_ns: int) -> list[LabelInterval]:
    """(stamp ns, frame_id) label messages in stamp order -> intervals; the last ends at end_ns."""
    intervals = []
    for index, (stamp_ns, name) in enumerate(labels):
        until = labels[index + 1][0] if index + 1 < len(labels) else end_ns
        if name and until > stamp_ns:
            intervals.append(LabelInterval(stamp_ns, until, name))
    return intervals


def intervals_from_csv(path: Path, first_ns: int) -> list[LabelInterval]:
    """The CSV's intervals on the stamp clock; `first_ns` is the recording's first stamp (for
    offsets)."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise LabelError(f"{path}: cannot read the label file: {error}") from None
    if not rows:
        raise LabelError(f"{path}: the label file is empty (expected a header {','.join(ABSOLUTE)})")
    header = tuple(cell.strip() for cell in rows[0])
    if header not in (ABSOLUTE, RELATIVE):
        raise LabelError(f"{path}: header {','.join(header)!r} must be {','.join(ABSOLUTE)} (stamp clock) or "
                         f"{','.join(RELATIVE)} (seconds after the first message)")
    origin = first_ns if header == RELATIVE else 0
    intervals = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise LabelError(f"{path}:{line}: expected 3 columns, got {len(row)}")
        try:
            start, end = (origin + round(float(cell) * NS_PER_S) for cell in row[:2])
        except ValueError:
            raise LabelError(f"{path}:{line}: start and end must be numbers of seconds, got {row[:2]}") from None
        name = row[2].strip()
        if not name:
            raise LabelError(f"{path}:{line}: empty label")
        if end <= start:
            raise LabelError(f"{path}:{line}: the interval ends ({row[1]}) before it starts ({row[0]})")
        if intervals and start < intervals[-1].end_ns:
            raise LabelError(f"{path}:{line}: the interval overlaps or precedes the one before it")
        intervals.append(LabelInterval(start, end, name))
    if not intervals:
        raise LabelError(f"{path}: no label rows")
    return intervals
