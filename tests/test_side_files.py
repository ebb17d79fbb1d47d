"""Rows outside the store (issue 21): side files replayed by every writer that opens the store, the ones that
cannot be replayed left in place and named, rows only in memory made visible and carried by checkpoints."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_crash_safety import N, check_store, expected_row

from lightning_ddd import DecisionStore
from lightning_ddd.cli import main
from lightning_ddd.store import StoreWriter
from lightning_ddd.store.pending import pending_dir, pending_files, row_from_bytes, row_to_bytes, save_side_file


def _writer(path: Path, run_id: str = "1") -> StoreWriter:
    return StoreWriter(path, run_name="s", run_id=run_id)


def test_open_replays_side_files_in_order_and_says_so_once(tmp_path):
    path = tmp_path / "s.h5"
    w = _writer(path)
    w.open()
    w.append(expected_row(1))
    for step in (2, 3, 4):
        save_side_file(path, expected_row(step), "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counts = _writer(path).open()
    assert counts == {"val": 4}  # counted after the replay
    said = [str(m.message) for m in caught]
    assert len(said) == 1 and "appended 3 row(s)" in said[0], said
    check_store(path, {1, 2, 3, 4})
    np.testing.assert_array_equal(DecisionStore(path).rows("val")["global_step"], [1, 2, 3, 4])
    assert not pending_dir(path).exists()


def test_side_files_that_cannot_be_replayed_are_left_named_and_hold_nothing_back(tmp_path):
    path = tmp_path / "s.h5"
    w = _writer(path)
    w.open()
    w.append(expected_row(1))
    save_side_file(path, expected_row(2), "1")
    other = save_side_file(path, expected_row(3), "another-run")  # parked by another run of the same name
    damaged = save_side_file(path, expected_row(4), "1")
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated by a crash of the disk
    save_side_file(path, expected_row(5), "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w2 = _writer(path)
        w2.open()
    text = " ".join(str(m.message) for m in caught)
    assert "appended 2 row(s)" in text and "left 2 side file(s)" in text
    assert other.name in text and "another run" in text and damaged.name in text and "unreadable" in text
    assert set(pending_files(path)) == {other, damaged}  # never deleted
    assert w2.append(expected_row(6)) is True  # later rows go to the store, not behind the refused files
    check_store(path, {1, 2, 5, 6})
    assert DecisionStore(path).pending_rows == 2
    assert main(["repair", str(path)]) == 1  # repair names them too, and leaves them


def test_a_side_file_of_another_dataset_is_refused_not_raised(tmp_path):
    path = tmp_path / "s.h5"
    w = _writer(path)
    w.open()
    w.append(expected_row(1))
    row = expected_row(2)
    small = type(row)(row.split, 2, 2.0, row.flags, row.num_classes, *(np.asarray(a)[: N // 2] for a in (
        row.evaluated, row.correct, row.pred, row.targets)))
    save_side_file(path, small, "1")
    with pytest.warns(UserWarning, match="another dataset"):
        _writer(path).open()
    assert len(pending_files(path)) == 1


def test_rows_only_in_memory_are_visible_and_reported_at_close(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    path = folder / "s.h5"
    w = _writer(path)
    w.open()
    w._free_bytes = lambda: 0  # type: ignore[method-assign] - the disk is full ...
    import lightning_ddd.store.writer as writer_module

    def no_side_file(*args, **kwargs):
        raise OSError(28, "No space left on device")

    real = writer_module.save_side_file
    writer_module.save_side_file = no_side_file  # ... for side files too
    try:
        with pytest.warns(UserWarning, match="kept in memory"):
            assert w.append(expected_row(1)) is False
        assert w.pending_rows == {"side_files": 0, "memory": 1}
        with pytest.warns(UserWarning, match="never written"):
            assert w.close() == 1
    finally:
        writer_module.save_side_file = real
    del w._free_bytes
    assert w.close() == 0  # room again: close writes it
    check_store(path, {1})


EXIT_SCRIPT = """
import sys, warnings
sys.path.insert(0, sys.argv[2])
from test_crash_safety import expected_row
import lightning_ddd.store.writer as wm
from lightning_ddd.store import StoreWriter
warnings.simplefilter("ignore")
w = StoreWriter(sys.argv[1], run_name="s", run_id="1")
w.open()
w._free_bytes = lambda: 0
def fail(*a, **k):
    raise OSError(28, "No space left on device")
wm.save_side_file = fail
w.append(expected_row(7))
"""


def test_interpreter_exit_reports_rows_never_written(tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(tmp_path / "s.h5"), str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 row(s)" in proc.stderr and "global steps [7]" in proc.stderr and "never written" in proc.stderr


def test_a_packed_row_is_small_and_exact():
    """One row of 50,000 samples with every field, as a checkpoint carries it (issue 21.2: measure it)."""
    from lightning_ddd.store import Row, RowFlag

    n = 50_000
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 1000, n)
    pred = np.where(rng.random(n) < 0.76, targets, rng.integers(0, 1000, n))
    row = Row("val", 5, 1.0, RowFlag.NONE, 1000, np.ones(n, bool), pred == targets, pred.astype(np.int16), targets,
              loss=rng.exponential(1.0, n).astype(np.float32), margin=rng.normal(size=n).astype(np.float32))
    data = row_to_bytes(row, "abc")
    assert len(data) < 1 << 20  # well under 1 MB (0.55 MB with random losses)
    back, run_id = row_from_bytes(data)
    assert run_id == "abc" and back.global_step == 5
    for name, value in row.sample_fields().items():
        np.testing.assert_array_equal(back.sample_fields()[name], value)
    np.testing.assert_array_equal(back.targets, targets)


def test_the_writer_creates_what_the_one_schema_table_says(tmp_path):
    """Field names, dtypes and fill values come from lightning_ddd.store.format alone (issue 22.4)."""
    import h5py

    from lightning_ddd.store import format as fmt
    from lightning_ddd.store.validate import REQUIRED_FIELDS, SAMPLE_FIELDS

    path = tmp_path / "s.h5"
    for precision in ("float32", "float16"):
        path.unlink(missing_ok=True)
        w = StoreWriter(path, run_name="s", run_id="1", float_dtype=precision)
        w.open()
        w.append(expected_row(1))
        with h5py.File(path, "r") as f:
            group = f["splits/val"]
            for name in ("evaluated", "correct", "pred", "loss", "margin"):
                field = fmt.SAMPLE[name]
                assert group[name].dtype == np.dtype(fmt.sample_dtype(field, 7, precision)), name
                assert group[name].dtype.kind in field.kinds
                fill = group[name].fillvalue
                assert (np.isnan(fill) and np.isnan(field.fill)) if name in ("loss", "margin") else fill == field.fill
            for value in fmt.ROW_VALUES:
                assert group[value.name].dtype == np.dtype(value.dtype) and group[value.name].dtype.kind in value.kinds
    assert SAMPLE_FIELDS == tuple(f.name for f in fmt.SAMPLE_FIELDS)
    assert REQUIRED_FIELDS == ("evaluated", "correct", "pred")
