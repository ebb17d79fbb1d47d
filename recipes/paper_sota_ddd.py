"""Reproduce the paper's ImageNet numbers from its published arrays (``../shared/paper-data/``).

Usage::

    python recipes/paper_sota_ddd.py ../shared/paper-data/sota11_mean_decisions_correct.npy \
        --label-errors ../shared/paper-data/imagenet_val_label_errors.npy [--json]

Prints, for the 11 state-of-the-art models: trivial / impossible / in-between with the "all but one" rule
(the abstract's 46.0 / 11.5 / 42.5 %) and the strict rule (31.8 / 7.0 / 61.1 %), the mean accuracy (0.6893),
the binomial reference at that accuracy, and the share of label errors among trivial, in-between and
impossible images.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from lightning_ddd.analysis import compare_to_binomial, label_error_shares, summarize_difficulty
from lightning_ddd.analysis.difficulty import k_from_fractions


def analyse(fractions_path: str, n_runs: int = 11, label_errors_path: str | None = None) -> dict:
    """Return the paper's numbers computed from the published arrays."""
    k = k_from_fractions(np.load(fractions_path), n_runs)
    out: dict = {"n_images": int(k.size), "n_models": n_runs}
    for name, t in (("all_but_one", 1), ("strict", 0)):
        r = summarize_difficulty(k, n_runs, tolerance=t, runs=tuple(f"model{i}" for i in range(n_runs)))
        out[name] = {"counts": r.counts, "percent": {c: 100 * f for c, f in r.fractions.items()}}
        if label_errors_path:
            shares = label_error_shares(r.labels, np.load(label_errors_path))
            out[name]["label_errors"] = {"share_within": shares.share_within,
                                         "share_of_errors": shares.share_of_errors, "counts": shares.counts,
                                         "total": shares.total_errors}
    cmp = compare_to_binomial(k, n_runs)
    out["mean_accuracy"] = cmp.mean_accuracy
    out["binomial_reference"] = cmp.binomial.tolist()
    out["observed_k_fractions"] = cmp.observed.tolist()
    out["total_variation_from_binomial"] = cmp.total_variation
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fractions", help="sota11_mean_decisions_correct.npy: fraction of 11 models correct per image")
    p.add_argument("--label-errors", help="imagenet_val_label_errors.npy: 0/1 mask of confirmed label errors")
    p.add_argument("--n-models", type=int, default=11)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    a = p.parse_args(argv)
    try:
        out = analyse(a.fractions, a.n_models, a.label_errors)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['n_images']} images, {out['n_models']} models, mean accuracy {out['mean_accuracy']:.4f}")
    for rule in ("all_but_one", "strict"):
        pc = out[rule]["percent"]
        print(f"{rule:>12}: trivial {pc['trivial']:.3f} %  impossible {pc['impossible']:.3f} %  "
              f"in-between {pc['in_between']:.3f} %")
        if "label_errors" in out[rule]:
            le = out[rule]["label_errors"]["share_within"]
            print(f"{'':>12}  label errors among trivial {100 * le['trivial']:.1f} %, in-between "
                  f"{100 * le['in_between']:.1f} %, impossible {100 * le['impossible']:.1f} %")
    binom = ", ".join(f"{v:.4f}" for v in out["binomial_reference"])
    print(f"binomial reference (k = 0..{out['n_models']}): {binom}")
    print(f"observed:                       {', '.join(f'{v:.4f}' for v in out['observed_k_fractions'])}")
    print(f"total variation distance from the binomial: {out['total_variation_from_binomial']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
