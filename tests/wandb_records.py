"""Read what an offline W&B run logged, straight from its `run-*.wandb` file.

Offline runs keep history and summary only in that file (a LevelDB-style log of protobuf
records: 7-byte file header, 32 KiB blocks, 7-byte record headers with FULL/FIRST/MIDDLE/LAST
chunks). Tests use it to check the keys a real run logs.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes):
    pos, record = 7, b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # block trailer padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += room
            continue
        body = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            record = body
        elif kind == MIDDLE:
            record += body
        elif kind == LAST:
            yield record + body


def read_run(run_dir: Path) -> tuple[list[dict], dict]:
    """(history rows, final summary) of the offline run in `run_dir`.

    The summary as W&B defines it: each logged key's last value, then what `run.summary` set.
    The file holds summary records only as often as the writer flushes them: on a loaded machine
    the last flush before exit was seen missing (2 runs in 3 at load 3-4), its history complete."""
    data = next(Path(run_dir).glob("run-*.wandb")).read_bytes()
    history, summary = [], {}
    for chunk in _chunks(data):
        record = pb.Record()
        record.ParseFromString(chunk)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
            summary.update(history[-1])
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    return history, summary


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)
