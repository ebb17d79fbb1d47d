"""``lightning-ddd plan``: how many trials a kappa, or a difference of two kappas, needs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lightning_ddd.cli_common import UserError


def _plan_difference(a: argparse.Namespace) -> int:
    """``plan --versus``: trials per pair to tell two kappas apart."""
    from lightning_ddd.analysis.planning import samples_for_difference

    b1, b2 = a.versus_acc or a.acc
    for value in (b1, b2):
        if not 0 < value < 1:
            raise UserError(f"--versus-acc takes two accuracies strictly between 0 and 1, got {[b1, b2]}.")
    if not -1 < a.versus < 1:
        raise UserError(f"--versus must lie strictly between -1 and 1, got {a.versus}.")
    if a.width is not None or a.n is not None:
        raise UserError("--versus plans for a power; it does not take --width or --n.")
    try:
        plan = samples_for_difference((a.acc[0], a.acc[1], a.kappa), (b1, b2, a.versus), power=a.power, seed=a.seed)
    except ValueError as err:
        raise UserError(str(err)) from None
    out = {"first": {"acc": list(a.acc), "kappa": a.kappa}, "second": {"acc": [b1, b2], "kappa": a.versus},
           "power": a.power, "n_needed": plan.n, "simulated_power": plan.power, "undefined_share": plan.undefined,
           "warnings": list(plan.warnings), "n_sim": plan.n_sim, "n_boot": plan.n_boot,
           "method": "two independent simulated studies of n i.i.d. trials each; the 95 % percentile-bootstrap "
                     "interval of kappa_1 - kappa_2 excludes 0"}
    if a.json:
        print(json.dumps(out))
        return 0
    print(f"trials per pair needed to tell kappa {a.kappa:g} from {a.versus:g} with probability {100 * a.power:g} %: "
          f"{plan.n} (simulated: {100 * plan.power:.1f} % of {plan.n_sim} pairs of studies did; independent "
          "trials per pair, percentile-bootstrap interval of the difference).")
    for note in plan.warnings:
        print(f"note: {note}")
    return 0


def _check_plan(a: argparse.Namespace) -> None:
    """Refuse plan options out of range, in one line each."""
    if not all(0 < value < 1 for value in a.acc):
        raise UserError(f"--acc takes two accuracies strictly between 0 and 1, got {a.acc}.")
    if not -1 < a.kappa < 1:
        raise UserError(f"--kappa must lie strictly between -1 and 1, got {a.kappa}.")
    if a.n is not None and a.n < 2:
        raise UserError(f"--n must be >= 2, got {a.n}.")
    if a.width is not None and a.width <= 0:
        raise UserError(f"--width must be > 0, got {a.width}.")
    if not 0 < a.power < 1:
        raise UserError(f"--power must lie strictly between 0 and 1, got {a.power}.")


def _plan(a: argparse.Namespace) -> dict[str, Any]:
    """The plan's numbers: the width at ``--n``, the n for ``--width``, or the n for ``--power``."""
    from lightning_ddd.analysis.planning import interval_width, samples_for_power, samples_for_width

    a1, a2 = a.acc
    out: dict[str, Any] = {"acc": [a1, a2], "kappa": a.kappa}
    try:
        if a.n is not None:
            out["n"] = a.n
            out["width_95"] = interval_width(a1, a2, a.kappa, a.n)
        if a.width is not None:
            out["target_width"] = a.width
            out["n_needed"] = samples_for_width(a1, a2, a.kappa, a.width)
        elif a.kappa:
            plan = samples_for_power(a1, a2, a.kappa, power=a.power, seed=a.seed)
            out.update(power=a.power, n_needed=plan.n, simulated_power=plan.power, undefined_share=plan.undefined,
                       expected_errors=list(plan.expected_errors), warnings=list(plan.warnings),
                       method="simulated studies of i.i.d. trials, 95 % percentile-bootstrap interval excludes 0",
                       n_sim=plan.n_sim, n_boot=plan.n_boot)
    except ValueError as err:
        raise UserError(str(err)) from None
    return out


def cmd_plan(a: argparse.Namespace) -> int:
    """``lightning-ddd plan``: how many trials a kappa (or a difference of two) needs."""
    _check_plan(a)
    if a.versus is not None:
        return _plan_difference(a)
    out = _plan(a)
    if a.json:
        print(json.dumps(out))
        return 0
    if "width_95" in out:
        print(f"{a.n} samples: expected 95 % interval of kappa {a.kappa:g} is {out['width_95']:.3f} wide "
              f"(+/- {out['width_95'] / 2:.3f}).")
    if "n_needed" in out and a.width is not None:
        print(f"samples needed for an expected 95 % interval width of {a.width:g}: {out['n_needed']}.")
    elif "n_needed" in out:
        print(f"samples needed for the 95 % interval to exclude 0 with probability {100 * a.power:g} %: "
              f"{out['n_needed']} "
              f"(simulated: {100 * out['simulated_power']:.1f} % of {out['n_sim']} studies of that size did; "
              "i.i.d. trials, percentile-bootstrap intervals).")
        for note in out["warnings"]:
            print(f"warning: {note}", file=sys.stderr)
    return 0
