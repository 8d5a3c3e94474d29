"""The paper's tables for a model and a data set, in one job (method.md §7).

On a data set's splits (generated, seeded, when none is given):
- extract: AIE per relation, function vectors from the top heads, a layer x strength sweep that picks
  each vector's layer and strength, and fine-tuned vectors (FFV) started from them;
- test: 0-shot, K-shot ICL, 0-shot + FV and 0-shot + FFV per relation;
- novel (object kinds never seen in training prompts): the same conditions;
- diagonal (relations no vector was made for): one-shot analogies, 0-shot and K-shot ICL against
  composite vectors of the base FVs and of the base FFVs.
Written as report.md, report.csv and report.json (and evaluation.json for the store). Each stage's
result is kept in stages/, so an interrupted report goes on where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from mfv_desktop.backends.registry import FAMILIES
from mfv_desktop.progress import as_part
from mfv_desktop.scenes import BASE_RELATIONS, DIAGONAL_RELATIONS, load_scene_set, path_part
from mfv_desktop.specs import AIESpec, ExtractSpec, FinetuneSpec, GenerateSpec, ReportSpec, SweepSpec
from mfv_desktop.tasks import TaskSpec

from .base import Gen, JobGen, OnModel, write_json
from .data import run_generate
from .finetune import run_finetune
from .mediation import averaging_text, run_aie
from .results import summary_of
from .science import (
    _backend,
    _load_vector,
    build_tasks,
    check_answers,
    load_arrays,
    run_extract,
    run_sweep,
    write_csv,
)
from .vectors import _parts, analogy_conditions

__all__ = ["ReportSpec", "paper_numbers", "run_report"]

#: the paper's numbers per model family (the `family` a backend records in its provenance), as the
#: registry states them for each (Family.paper, from method.md §7). The paper's "composite FV" is
#: built from the fine-tuned vectors (method.md §6), so it stands beside our composite FFV. A condition
#: without a number shows "—"; a family without numbers gets no paper column.
PAPER: dict[str, Mapping[str, Any]] = {name: f.paper for name, f in FAMILIES.items() if f.paper}


def paper_numbers(family: str | None) -> dict[str, Any]:
    """The paper's numbers used beside a model of `family` (kept in the report's JSON): model None when
    the paper has none for it."""
    return {"family": family, "source": "method.md §7", **PAPER.get(family or "", {"model": None})}


def run_report(spec: ReportSpec) -> JobGen:
    out = Path(spec.out)
    model = OnModel(model=spec.model, batch_size=spec.batch_size)  # every stage on the report's model

    def stage(name: str, start: float, width: float, make: Callable[[], JobGen]) -> JobGen:
        """A stage's result, computed once: kept in stages/NAME.json for a report with the same
        spec that resumes (a changed spec computes it again)."""
        f = out / "stages" / f"{name}.json"
        key = json.loads(json.dumps(spec.to_json()))
        try:
            kept = json.loads(f.read_text())
            if kept["spec"] == key:
                return kept["result"]
        except (OSError, ValueError, KeyError):
            pass
        result = yield from as_part(make(), start, width, name)
        write_json(f, {"spec": key, "result": summary_of(result)})
        return json.loads(f.read_text())["result"]

    scenes = spec.scenes or str(out / "scenes")
    if not spec.scenes:
        yield from _generate(spec, scenes)
    have = {s.split for s in load_scene_set(scenes)}
    for split in (spec.extract_split, spec.test_split):
        if split not in have:
            raise ValueError(f"the data set has no '{split}' split (it has: {', '.join(sorted(have)) or 'none'})")
    backend = _backend(spec)
    prov = backend.provenance()
    report: dict[str, Any] = {
        "spec": spec.to_json(),
        "provenance": prov,
        "paper": paper_numbers(prov.get("family")),
        "notes": [],
    }
    aie_dir = str(out / "aie")
    aie = yield from stage(
        "aie",
        0.05,
        0.35,
        lambda: run_aie(
            AIESpec(
                scenes=scenes,
                out=aie_dir,
                k=spec.k,
                n_prompts=spec.n_aie,
                split=spec.extract_split,
                seed=spec.seed,
                matched_only=spec.matched_only,
                **model,
            )
        ),
    )
    report["aie"] = {}
    for rel in BASE_RELATIONS:
        pos = np.clip(load_arrays(Path(aie_dir) / path_part(rel) / "aie.safetensors")["aie"], 0, None)
        top = np.sort(pos.ravel())[::-1][: spec.top_k]
        report["aie"][rel] = {**aie["relations"][rel], "top_share": float(top.sum() / max(pos.sum(), 1e-12))}
    fvs, ffvs, report["sweeps"], report["finetune"] = {}, {}, {}, {}
    for j, rel in enumerate(BASE_RELATIONS):
        vec = str(out / "vectors" / f"{path_part(rel)}.safetensors")
        ex = ExtractSpec(aie=aie_dir, relation=rel, out=vec, top_k=spec.top_k, label=f"{rel} FV", **model)
        at = 0.4 + 0.35 * j / len(BASE_RELATIONS)
        sweep = SweepSpec(
            vector=vec,
            scenes=scenes,
            out=str(out / "sweeps" / path_part(rel)),
            split=spec.extract_split,
            n_prompts=spec.n_prompts,
            strengths=spec.strengths,
            seed=spec.seed,
            **model,
        )
        sw = yield from stage(f"sweep-{rel}", at, 0.03, partial(_extract_and_sweep, ex, sweep))
        report["sweeps"][rel] = sw
        finetune = FinetuneSpec(
            vector=vec,
            scenes=scenes,
            out=str(out / "finetune" / path_part(rel)),
            split=spec.extract_split,
            n_prompts=spec.n_finetune,
            preset=spec.preset,
            epochs=spec.epochs,
            seed=spec.seed,
            label=f"{rel} FFV",
            **model,
        )
        ft = yield from stage(
            f"finetune-{rel}", at + 0.03, 0.35 / len(BASE_RELATIONS) - 0.03, partial(run_finetune, finetune)
        )
        report["finetune"][rel] = {
            k: ft[k] for k in ("best_epoch", "val_accuracy", "start_val_accuracy", "layer", "n_train", "n_val")
        }
        fvs[rel], ffvs[rel] = vec, ft["vector"]
    report["test"] = yield from stage(
        "test", 0.75, 0.1, lambda: _accuracies(spec, backend, scenes, spec.test_split, (0, *spec.ks), fvs, ffvs)
    )
    if spec.novel_split in have:
        report["novel"] = yield from stage(
            "novel", 0.85, 0.05, lambda: _accuracies(spec, backend, scenes, spec.novel_split, (0, 1, spec.k), fvs, ffvs)
        )
    else:
        report["notes"].append(f"no '{spec.novel_split}' split: the novel-objects table is left out")
    if spec.diagonal_split in have:
        report["diagonal"] = yield from stage(
            "diagonal", 0.9, 0.1, lambda: _analogies(spec, backend, scenes, fvs, ffvs)
        )
    else:
        report["notes"].append(f"no '{spec.diagonal_split}' split: the analogy table is left out")
    _write(out, report, spec)
    return {
        "file": str(out / "report.md"),
        "test": report["test"]["rows"],
        "diagonal": report.get("diagonal", {}).get("rows", []),
    }


class _Draw(TypedDict, total=False):
    """How a split's scenes are drawn (GenerateSpec's fields beyond the default)."""

    novel: bool
    diagonal: bool


def _generate(spec: ReportSpec, scenes: str) -> Gen[None]:
    """The four splits, seeded; a split already there is kept (a resumed report)."""
    have = {s.split for s in load_scene_set(scenes)} if (Path(scenes) / "scenes.jsonl").is_file() else set()
    n = spec.n_prompts
    splits: list[tuple[str, int, _Draw]] = [
        (spec.test_split, n, {}),
        (spec.extract_split, max(n, spec.n_finetune, spec.n_aie), {}),
        (spec.novel_split, n, {"novel": True}),
        (spec.diagonal_split, 2 * n, {"diagonal": True}),
    ]
    for i, (split, count, kw) in enumerate(splits):
        if split not in have:
            yield from as_part(
                run_generate(GenerateSpec(out=scenes, n_scenes=count, seed=spec.seed + i, split=split, **kw)),
                0.0125 * i,
                0.0125,
                f"scenes ({split})",
            )


def _extract_and_sweep(ex: ExtractSpec, sw: SweepSpec) -> Gen[dict[str, Any]]:
    """The top heads' vector, a layer x strength sweep on the extract split, and the vector again
    with the best layer and strength recorded in it."""
    yield from run_extract(ex)
    res = yield from run_sweep(sw)
    yield from run_extract(replace(ex, layer=res.best_layer, strength=res.best_strength))
    return res.summary()


def _accuracies(
    spec: ReportSpec, backend, scenes: str, split: str, ks, fvs: dict[str, str], ffvs: dict[str, str]
) -> JobGen:
    """Per relation: 0-shot and K-shot ICL, 0-shot + FV, 0-shot + FFV."""
    from mfv_desktop.fv import Intervention, evaluate, injection, no_intervention

    conds: list[tuple[str, str, Any, Intervention | None]] = []
    for rel in BASE_RELATIONS:

        def tasks(k: int, rel=rel):
            return build_tasks(
                scenes,
                TaskSpec(
                    relations=(rel,),
                    k=k,
                    kind="zeroshot" if k == 0 else "clean",
                    seed=spec.seed,
                    split=split,
                    max_per_relation=spec.n_prompts,
                ),
            ).tasks

        for k in ks:
            conds.append((rel, "0-shot" if k == 0 else f"{k}-shot ICL", tasks(k), None))
        for name, path in (("0-shot + FV", fvs[rel]), ("0-shot + FFV", ffvs[rel])):
            fv = _load_vector(path, backend)
            conds.append((rel, name, tasks(0), injection(fv.vector, fv.layer, fv.strength)))
    for *_, ts, _ in conds:
        check_answers(backend, ts)
    rows = []
    for i, (rel, name, ts, interv) in enumerate(conds):
        r = yield from as_part(
            evaluate(backend, ts, spec.batch_size, interv or no_intervention),
            i / len(conds),
            1 / len(conds),
            f"{rel}: {name}",
        )
        rows.append([rel, name, r.n, round(r.accuracy, 4)])
    return {"split": split, "rows": rows}


def _analogies(spec: ReportSpec, backend, scenes: str, fvs: dict[str, str], ffvs: dict[str, str]) -> JobGen:
    zs = build_tasks(
        scenes,
        TaskSpec(
            relations=DIAGONAL_RELATIONS,
            kind="zeroshot",
            split=spec.diagonal_split,
            seed=spec.seed,
            max_per_relation=spec.n_prompts,
        ),
    ).tasks
    composites = {
        "composite FV": _parts(list(fvs.values()), backend)[1],
        "composite FFV": _parts(list(ffvs.values()), backend)[1],
    }
    res = yield from analogy_conditions(backend, zs, composites, (1, spec.k), spec.seed, spec.batch_size)
    # the prompts' answers are recorded by an analogy run, not kept in a report's table
    return {"split": spec.diagonal_split, **{k: v for k, v in res.items() if k != "answered"}}


# -- writing it down -------------------------------------------------------------------------------
def _pivot(rows: list[list[Any]], relations) -> tuple[list[str], dict[str, dict[str, float]], dict[str, int]]:
    """rows (relation, condition, n, accuracy) -> conditions in order, {condition: {relation: acc}}, n per relation."""
    conds: dict[str, dict[str, float]] = {}
    ns: dict[str, int] = {}
    for rel, cond, n, acc in rows:
        conds.setdefault(cond, {})[rel] = acc
        ns[rel] = n
    for c in conds.values():
        c["mean"] = float(np.mean([c[r] for r in relations if r in c]))
    return list(conds), conds, ns


def _table(
    title: str, rows: list[list[Any]], relations, paper: dict[str, Any] | None = None, table: str = ""
) -> list[str]:
    """Conditions x relations in %, with the mean, and the paper's means for `table` beside them when
    `paper` (paper_numbers) is given: "—" where the paper has no number; without the column, and a
    line that says so, when it has none for the model's family."""
    order, acc, ns = _pivot(rows, relations)
    rels = [r for r in relations if r in ns]
    shown = paper if paper is not None and paper["model"] is not None else None  # the paper column's numbers
    col = shown is not None
    head = "| condition | " + " | ".join(f"{r} (n={ns[r]})" for r in rels) + " | mean |"
    lines = [
        f"## {title}",
        "",
        head + (f" paper, {shown['model']} (mean) |" if shown is not None else ""),
        "|---|" + "---|" * (len(rels) + 1 + col),
    ]
    for c in order:
        row = f"| {c} | " + " | ".join(f"{100 * acc[c][r]:.1f}" for r in rels) + f" | **{100 * acc[c]['mean']:.1f}** |"
        lines.append(row + (f" {shown[table].get(c, '—')} |" if shown is not None else ""))
    if paper is not None and not col:
        lines += ["", f"The paper gives no numbers for this model family ({paper['family']}): no paper column."]
    return lines + [""]


def render(report: dict[str, Any]) -> str:
    prov = report["provenance"]
    lines = [
        f"# Multimodal function vectors: {prov.get('model_id', '')}",
        "",
        "Top-1 first-token accuracy, %. Vectors: top heads by AIE on the extract split, at the layer and "
        "strength their sweep chose; FFV: fine-tuned from them (the best epoch on held-out extract scenes).",
        "",
    ]
    lines += _table(
        f"Base relations ({report['test']['split']} split)",
        report["test"]["rows"],
        BASE_RELATIONS,
        report["paper"],
        "test",
    )
    if "novel" in report:
        lines += _table(f"Novel objects ({report['novel']['split']} split)", report["novel"]["rows"], BASE_RELATIONS)
    if "diagonal" in report:
        d = report["diagonal"]
        lines += _table(
            f"One-shot analogies on untrained diagonal relations ({d['n']} items)",
            d["rows"],
            DIAGONAL_RELATIONS,
            report["paper"],
            "diagonal",
        )
        lines += ["Mean composite weights (over the base vectors) per diagonal relation:", ""]
        for name, per_rel in d["mean_weights"].items():
            lines += [
                f"- {name}, {rel}: " + ", ".join(f"{b} {w:.2f}" for b, w in ws.items()) for rel, ws in per_rel.items()
            ]
        lines.append("")
    lines += [
        "## Heads (AIE on the extract split)",
        "",
        "| relation | averaged over | clean accuracy | max AIE | top-k share of positive AIE |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {rel} | {averaging_text(a)} | {a['clean_accuracy']:.3f} | {a['max']:.4f} | {a['top_share']:.3f} |"
        for rel, a in report["aie"].items()
    ]
    lines += ["", "## Layer x strength sweep (0-shot + FV, extract split)", ""]
    for rel, sw in report["sweeps"].items():
        lines += [
            f"**{rel}** (0-shot {sw['baseline']['accuracy']:.3f}; best: layer {sw['best_layer']}, strength "
            f"{sw['best_strength']:g}, {sw['best_accuracy']:.3f})",
            "",
            "| strength | " + " | ".join(f"L{layer}" for layer in sw["layers"]) + " |",
            "|---|" + "---|" * len(sw["layers"]),
        ]
        lines += [
            f"| {s:g} | " + " | ".join(f"{a:.3f}" for a in row) + " |"
            for s, row in zip(sw["strengths"], sw["accuracy"])
        ]
        lines.append("")
    lines += [
        "## Fine-tuning (validation accuracy, held-out extract scenes)",
        "",
        "| relation | layer | train / val prompts | start | best | best epoch |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {rel} | {f['layer']} | {f['n_train']} / {f['n_val']} | {f['start_val_accuracy']:.3f} | "
        f"{f['val_accuracy']:.3f} | {f['best_epoch']} |"
        for rel, f in report["finetune"].items()
    ]
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def _write(out: Path, report: dict[str, Any], spec: ReportSpec) -> None:
    tables = [(name, report[name]) for name in ("test", "novel", "diagonal") if name in report]
    rows = [[t["split"], *r] for _, t in tables for r in t["rows"]]
    write_csv(out / "report.csv", ["split", "relation", "condition", "n", "accuracy"], rows)
    write_json(out / "report.json", report)
    (out / "report.md").write_text(render(report))
    write_json(
        out / "evaluation.json",
        {
            "rows": [{"split": s, "relation": rel, "condition": c, "n": n, "accuracy": a} for s, rel, c, n, a in rows],
            "provenance": report["provenance"],
        },
    )
