"""Live W&B logging, offline: values read back from the run and checked against the store's analysis."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import digits_loaders, trainer
from lightning.pytorch.loggers import WandbLogger
from wandb_offline import artifacts, history, run_file

from lightning_ddd import DecisionRecorder, DecisionStore
from lightning_ddd.analysis import summarize_dynamics
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.live.summaries import WandbOptions

KEYS = ("accuracy", "always_learned", "never_learned", "flip_flopping", "learned", "forgotten", "kappa_prev",
        "pred_changes")


class WithTest(DigitsClassifier):
    def test_step(self, batch, batch_idx):
        self.log("test_loss", F.cross_entropy(self(batch[0]), batch[1]))


def expected(store_path) -> list[dict[str, float]]:
    s = DecisionStore(store_path)
    d = summarize_dynamics(s.read("val", "correct"), s.read("val", "evaluated"), pred=s.read("val", "pred"))
    r = d.rows
    return [{"accuracy": r.accuracy[i], "always_learned": r.always_learned[i], "never_learned": r.never_learned[i],
             "flip_flopping": r.flip_flopping[i], "learned": r.learned[i], "forgotten": r.forgotten[i],
             "kappa_prev": r.kappa_prev[i], "pred_changes": r.pred_changes[i]} for i in range(len(r.accuracy))]


def test_scalars_media_table_and_artifact_then_test_still_logs(tmp_path):
    logger = WandbLogger(project="ddd-test", save_dir=str(tmp_path), offline=True)
    train, val = digits_loaders()
    rec = DecisionRecorder(tmp_path / "ddd", run_name="wb", wandb=WandbOptions(table_rows=20, table_every_n_epochs=2))
    t = trainer(tmp_path, [rec], logger=logger, max_epochs=3)
    t.fit(WithTest(), train, val)
    want = expected(tmp_path / "ddd" / "wb.h5")
    summary = logger.experiment.summary
    for key in KEYS:
        assert summary[f"ddd/val/{key}"] == pytest.approx(want[-1][key], abs=1e-6), key
    t.test(t.lightning_module, val, verbose=False)  # the recorder did not finish the user's run
    assert "test_loss" in logger.experiment.summary.keys()
    logger.experiment.finish()
    rows = history(run_file(tmp_path))
    scalar_rows = [r for r in rows if "ddd/val/accuracy" in r]
    assert len(scalar_rows) == 3  # once per recorded epoch (the sanity check's logs never reach loggers)
    for got, w in zip(scalar_rows, want[1:]):
        for key in KEYS:
            if np.isfinite(w[key]):
                assert got[f"ddd/val/{key}"] == pytest.approx(w[key], abs=1e-6), key
    media = [r for r in rows if "ddd/val/rows_correct_hist" in r]
    last_chart = media[-1]
    assert len(media) == 3  # histograms and chart every row
    tables = [r for r in rows if "ddd/val/hard_samples" in r]
    assert len(tables) == 2  # row 2 by the every-2 schedule, row 3 at the end of fit
    last = tables[-1]
    assert last_chart["ddd/val/rows_correct_hist"]["_type"] == "histogram"
    assert last_chart["ddd/val/first_learned_hist"]["_type"] == "histogram"
    table = last["ddd/val/hard_samples"]
    assert table["_type"] == "table-file" and table["nrows"] <= 20 and table["ncols"] == 7  # with thumbnail
    assert any("categories" in k for k in last_chart)
    arts = artifacts(run_file(tmp_path))
    assert [a.type for a in arts if a.type != "run_table"] == ["decision-store"]


def test_large_store_is_referenced_with_a_warning(tmp_path):
    logger = WandbLogger(project="ddd-test", save_dir=str(tmp_path), offline=True)
    train, val = digits_loaders()
    rec = DecisionRecorder(tmp_path / "ddd", run_name="big", wandb=WandbOptions(artifact_max_mb=0.0001, table_rows=0))
    with pytest.warns(UserWarning, match="logging a reference"):
        trainer(tmp_path, [rec], logger=logger, max_epochs=1).fit(DigitsClassifier(), train, val)
    logger.experiment.finish()
    arts = artifacts(run_file(tmp_path))
    stores = [a for a in arts if a.type == "decision-store"]
    assert len(stores) == 1 and any(m.ref.startswith("file://") for m in stores[0].manifest.contents)


def test_ddp_fork_logs_once_per_row_and_completely(tmp_path):
    logger = WandbLogger(project="ddd-test", save_dir=str(tmp_path), offline=True)
    train, val = digits_loaders(val_batch_size=64)
    rec = DecisionRecorder(tmp_path / "ddd", run_name="ddp")
    trainer(tmp_path, [rec], logger=logger, strategy="ddp_fork", devices=2, max_epochs=3).fit(
        DigitsClassifier(), train, val)
    want = expected(tmp_path / "ddd" / "ddp.h5")
    rows = history(run_file(tmp_path))
    scalar_rows = [r for r in rows if "ddd/val/accuracy" in r]
    assert len(scalar_rows) == 3
    for got, w in zip(scalar_rows, want[1:]):
        assert got["ddd/val/always_learned"] == pytest.approx(w["always_learned"], abs=1e-6)
        assert got["ddd/val/accuracy"] == pytest.approx(w["accuracy"], abs=1e-6)
    assert len([r for r in rows if "ddd/val/hard_samples" in r]) == 1  # every 10 rows: only the last, at fit end
    assert len([r for r in rows if "ddd/val/rows_correct_hist" in r]) == 3
    assert len([a for a in artifacts(run_file(tmp_path)) if a.type == "decision-store"]) == 1


def test_a_media_failure_is_one_warning_and_never_takes_the_artifact_or_other_media(tmp_path, monkeypatch):
    from lightning_ddd.live.wandb_media import WandbMedia

    def broken(self, *args, **kwargs):
        raise RuntimeError("thumbnail reader broke")

    monkeypatch.setattr(WandbMedia, "_table", broken)
    logger = WandbLogger(project="ddd-test", save_dir=str(tmp_path), offline=True)
    train, val = digits_loaders()
    rec = DecisionRecorder(tmp_path / "ddd", run_name="wb", wandb=WandbOptions(table_rows=20, table_every_n_epochs=1))
    with pytest.warns(UserWarning, match="hard_samples.*thumbnail reader broke") as caught:
        trainer(tmp_path, [rec], logger=logger, max_epochs=3).fit(DigitsClassifier(), train, val)
    assert sum("could not be logged" in str(w.message) for w in caught) == 1  # once, not once per row
    logger.experiment.finish()
    rows = history(run_file(tmp_path))
    assert len([r for r in rows if "ddd/val/rows_correct_hist" in r]) == 3  # the other media of every row
    assert not [r for r in rows if "ddd/val/hard_samples" in r]
    assert len([a for a in artifacts(run_file(tmp_path)) if a.type == "decision-store"]) == 1
