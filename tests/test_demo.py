"""The demo at reduced size: deterministic stores, a report, and a grid runner that skips and resumes."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_ddd import DecisionStore
from lightning_ddd.cli import main
from lightning_ddd.demo.experiment import DEMO_BASE, demo_grid, train_run
from lightning_ddd.grid import GridRunner, conditions_of, paper_grid, write_slurm_array


def _arrays(path):
    s = DecisionStore(path)
    return {f: s.read("val", f) for f in ("correct", "pred", "loss", "margin")} | {"epoch": s.rows("val")["epoch"]}


def test_quick_demo_is_deterministic_and_reports(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "a"), "--quiet", "--no-report"]) == 0
    assert main(["demo", "--quick", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "runs compared at epoch 3" in out and "strict rule:" in out
    names = sorted(p.name for p in (tmp_path / "a" / "stores").glob("*.h5"))
    assert len(names) == len(demo_grid(quick=True)) == 9
    for name in names:
        a, b = _arrays(tmp_path / "a" / "stores" / name), _arrays(tmp_path / "b" / "stores" / name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    base = _arrays(tmp_path / "a" / "stores" / "base.h5")
    np.testing.assert_array_equal(base["epoch"], np.arange(6))  # epoch 0 + 3 epochs + 2 extra for "+n"
    assert (tmp_path / "b" / "report" / "index.html").exists()
    acc = base["correct"][3].mean()
    assert 0.3 < acc < 0.9  # well below the ceiling, as the paper's models


def test_full_grid_has_the_paper_conditions():
    grid = demo_grid()
    assert len(grid) >= 12
    conds = set(conditions_of(grid).values())
    assert {"base", "init", "order", "lr", "batch size", "optimizer", "architecture", "half data",
            "combined"} <= conds
    assert sum(s.condition == "init" for s in grid) >= 3 and grid[0].extra_epochs == 10
    halves = [s.changes["subset"] for s in grid if s.condition == "half data"]
    assert halves == ["half_a", "half_b"]


def test_runner_skips_finished_and_resumes_interrupted(tmp_path):
    base = dict(DEMO_BASE, epochs=3, milestones=[])
    grid = [s for s in paper_grid(repeats=1, lr=base["lr"], batch_size=32, alt_arch="cnn", plus_epochs=0,
                                  combined=False) if s.name in ("base", "init-1")]
    calls = []

    def crashing(spec, ckpt, paths):
        calls.append((spec.name, ckpt))
        import lightning.pytorch as pl

        class Crash(pl.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if spec.name == "init-1" and ckpt is None and trainer.current_epoch == 1:
                    raise RuntimeError("simulated pre-emption")

        train_run(spec, ckpt, paths, base=base, seed=0, extra_callbacks=[Crash()])

    runner = GridRunner(tmp_path, crashing)
    with pytest.raises(RuntimeError, match="simulated pre-emption"):
        runner.run(grid)
    assert runner.status(grid[0]) == "done" and runner.status(grid[1]) == "interrupted"
    assert runner.run(grid) == {"base": "skipped", "init-1": "resumed"}
    assert calls[-1][0] == "init-1" and calls[-1][1].endswith("last.ckpt")
    fresh = GridRunner(tmp_path / "fresh", lambda s, c, p: train_run(s, c, p, base=base, seed=0))
    fresh.run(grid[1:])
    a, b = _arrays(tmp_path / "stores" / "init-1.h5"), _arrays(tmp_path / "fresh" / "stores" / "init-1.h5")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_slurm_array_script(tmp_path):
    grid = demo_grid()
    path = write_slurm_array(grid, tmp_path / "grid.sbatch", "python recipes/run_grid.py cifar10 --run $RUN",
                             nodes=2, gpus_per_node=4)
    text = path.read_text()
    assert f"#SBATCH --array=0-{len(grid) - 1}" in text and "--nodes=2" in text and "--gres=gpu:4" in text
    assert "RUNS=(base init-1" in text and "srun python recipes/run_grid.py cifar10 --run $RUN" in text
