"""`python -m training`: train the bundled small OpenFlamingo (resumes from --work), what `mfv train-bundled` did."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training", description="train the bundled small OpenFlamingo (resumes from --work)"
    )
    p.add_argument("--work", default="runs/bundled-training")
    p.add_argument("--minutes", type=float, help="stop after this many minutes (run again to continue)")
    p.add_argument("--max-prompts", type=int, help="total prompt budget (default: the config's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", default="", help="write the trained model folder here at the end")
    p.add_argument("--init-from", default="", help="continue from an exported model folder (e.g. resources/bundled)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from .bundled import BundledConfig, export, train

    cfg = BundledConfig(seed=a.seed)
    if a.max_prompts is not None:
        cfg = replace(cfg, max_prompts=a.max_prompts)
    gen = train(a.work, cfg, None if a.minutes is None else a.minutes * 60, a.init_from or None)
    try:
        while True:
            p = next(gen)
            if not a.quiet:
                print(f"[{p.done}/{p.total}] {p.message}", file=sys.stderr, flush=True)
    except StopIteration as stop:
        state = stop.value
    if a.export:
        export(a.work, a.export)
    last = next((h for h in reversed(state.history) if "loss" in h), {})
    print(
        json.dumps(
            {
                "prompts": state.prompts,
                "stage": state.stage,
                "seconds": round(state.seconds),
                "last_eval": last,
                "exported": a.export or None,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
