"""Read the records of an offline W&B run file (``run-<id>.wandb``) without any server.

The file is W&B's append-only log: a 7-byte header, then 32 KiB blocks of records in LevelDB's log
framing (crc32, length, type; a record may span blocks), each a serialized ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> list[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    out, pos, pending = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk = data[pos + 7: pos + 7 + length]
        pos += 7 + length
        if kind == FULL:
            pending = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        elif kind == LAST:
            pending += chunk
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(pending)
        out.append(rec)
        pending = b""
    return out


def history(path: str | Path) -> list[dict]:
    """Every history row logged, as {key: value} (media appear as their JSON description)."""
    rows = []
    for rec in records(path):
        if rec.WhichOneof("record_type") == "history":
            row: dict = {}
            for item in rec.history.item:
                value = json.loads(item.value_json)
                if item.key:
                    row[item.key] = value
                    continue
                node = row
                for part in item.nested_key[:-1]:
                    node = node.setdefault(part, {})
                node[item.nested_key[-1]] = value
            rows.append(row)
    return rows


def artifacts(path: str | Path) -> list:
    return [rec.artifact for rec in records(path) if rec.WhichOneof("record_type") == "artifact"]


def run_file(save_dir: str | Path) -> Path:
    files = sorted(Path(save_dir).rglob("run-*.wandb"))
    assert files, f"no offline run file under {save_dir}"
    return files[-1]
