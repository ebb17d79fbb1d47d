"""Read the records of an offline W&B run file (``run-<id>.wandb``) without any server.

The file is W&B's append-only log: a 7-byte header, then 32 KiB blocks of records in LevelDB's log
framing (crc32, length, type; a record may span blocks), each a serialized ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
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


def run_file(save_dir: str | Path, limit_s: float = 600.0) -> Path:
    """The run file, once W&B's service has written all of it (its ``exit`` record).

    ``run.finish()`` returns when the service has *handled* the exit; the service writes the file from its own
    process, so on a busy machine the file's last records can land a moment later. This waits for that
    condition (the limit only turns a run that never finishes into a clear failure), never for a fixed time.
    """
    deadline = time.monotonic() + limit_s
    while True:
        files = sorted(Path(save_dir).rglob("run-*.wandb"))
        if files and any(r.WhichOneof("record_type") == "exit" for r in _records_so_far(files[-1])):
            return files[-1]
        assert time.monotonic() < deadline, f"no complete offline run file under {save_dir} after {limit_s:g} s"
        time.sleep(0.2)


def _records_so_far(path: Path) -> list:
    try:
        return records(path)
    except Exception:  # noqa: BLE001 - a record still being written
        return []
