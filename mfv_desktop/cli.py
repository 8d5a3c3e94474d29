"""`mfv`: every job headless. Each command builds the same job spec the GUI builds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from mfv_desktop import __version__


def _csv(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in _csv(s))


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(x) for x in _csv(s))


def _heads(s: str) -> tuple[tuple[int, int], ...]:
    """'12:3,14:0' -> ((12, 3), (14, 0))"""
    out = []
    for part in _csv(s):
        layer, _, head = part.partition(":")
        out.append((int(layer), int(head)))
    return tuple(out)


def _model_args(p: argparse.ArgumentParser) -> None:
    from mfv_desktop.backends.registry import FAMILIES

    tiny = ", ".join(f"'{f.tiny_ref}' ({f.name})" for f in FAMILIES.values())
    g = p.add_argument_group("model")
    g.add_argument("--model", default="bundled",
                   help=f"'bundled' (the small OpenFlamingo trained by this project), a tiny random model for tests "
                        f"({tiny}; NAME:SEED for another seed) or a model folder of any family this app knows "
                        "(`mfv info --model FOLDER --files-only` checks it)")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    g.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    g.add_argument("--batch-size", type=int, default=16)


def _matched_args(p: argparse.ArgumentParser) -> None:
    """--matched-only (the default) / --all-corrupted: the spec's matched_only."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--matched-only", dest="matched_only", action="store_true", default=True,
                   help="average the indirect effect over the corrupted prompts whose clean prompt the model "
                        "answers correctly (the authors'; the default; all of them when it answers none)")
    g.add_argument("--all-corrupted", dest="matched_only", action="store_false",
                   help="average the indirect effect over every corrupted prompt")


def _model_kw(a: argparse.Namespace) -> dict[str, Any]:
    return dict(model=a.model, device=a.device, dtype=a.dtype, batch_size=a.batch_size)


def build_parser() -> argparse.ArgumentParser:
    from mfv_desktop.scenes.model import BASE_RELATIONS, DIAGONAL_RELATIONS

    rels = ",".join(BASE_RELATIONS)
    p = argparse.ArgumentParser(prog="mfv", description="Multimodal function vectors, headless.")
    p.add_argument("--version", action="version", version=f"mfv {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--store", nargs="?", const="", default=None, metavar="DATA_DIR",
                   help="record runs and read/write data in the store in DATA_DIR (alone: the default data "
                        "folder, or $MFV_DATA_DIR). Jobs then write into the store's runs/ folder and "
                        "--scenes may name a data set as dataset:NAME")
    p.add_argument("--read-only", action="store_true", help="open the store read-only (beside a running app)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="the whole chain: scenes -> AIE -> vectors -> layer sweep -> evaluation")
    s.add_argument("--out", default="runs/demo")
    s.add_argument("--relations", type=_csv, default=rels)
    s.add_argument("--n-extract", type=int, default=64)
    s.add_argument("--n-test", type=int, default=32)
    s.add_argument("--k", type=int, default=4)
    s.add_argument("--n-prompts", type=int, default=16)
    s.add_argument("--top-k", type=int, default=10)
    s.add_argument("--strengths", type=_floats, default=(1.0, 2.0, 4.0), help="strengths the layer sweep tries")
    s.add_argument("--canvas", type=int, default=800)
    s.add_argument("--seed", type=int, default=0)
    _model_args(s)

    s = sub.add_parser("generate", help="generate synthetic scenes (the paper's layout) into a folder "
                                        "(or, with --store, into a data set)")
    s.add_argument("out", nargs="?", default="", help="scene folder (not with --store)")
    s.add_argument("--dataset", default="generated", help="with --store: the data set to add the scenes to")
    s.add_argument("--n", type=int, default=100, dest="n_scenes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split", default="train")
    s.add_argument("--diagonal", action="store_true", help="neighbours at the anchor's corners")
    s.add_argument("--novel", action="store_true", help="draw from the held-out object kinds")
    s.add_argument("--n-novel", type=int, default=4)
    s.add_argument("--kinds", type=_csv, default=())
    s.add_argument("--canvas", type=int, default=800)
    s.add_argument("--min-size", type=int, help="default: 130 px scaled to the canvas (the paper's 800 px)")
    s.add_argument("--max-size", type=int, help="default: 230 px scaled to the canvas")

    s = sub.add_parser("tasks", help="build a task set (clean, corrupted or zero-shot prompts)")
    s.add_argument("scenes")
    s.add_argument("out")
    s.add_argument("--relations", type=_csv, default=rels)
    s.add_argument("--k", type=int, default=4)
    s.add_argument("--kind", dest="task_kind", choices=["clean", "corrupted", "zeroshot"], default="clean")
    s.add_argument("--corruption", choices=["paper", "todd"], default="paper")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split")
    s.add_argument("--max-per-relation", type=int)

    def mediation(s: argparse.ArgumentParser) -> None:
        """The prompts of an AIE job or its preview."""
        s.add_argument("--scenes", required=True)
        s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
        s.add_argument("--relations", type=_csv, default=rels)
        s.add_argument("--k", type=int, default=4)
        s.add_argument("--n-prompts", type=int, default=100)
        s.add_argument("--split")
        s.add_argument("--corruption", choices=["paper", "todd"], default="paper")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--all-prompts", dest="only_correct", action="store_false",
                       help="average over all clean prompts, not only the correctly answered ones")
        _matched_args(s)

    s = sub.add_parser("aie", help="mean head activations and average indirect effects per relation")
    mediation(s)
    s.add_argument("--method", choices=["fast", "reference"], default="fast",
                   help="fast: the last position recomputed alone for many heads at once; reference: one "
                        "full forward pass per head (slow; the same numbers)")
    _model_args(s)

    s = sub.add_parser("preview", help="attribution patching: a quick linear estimate of every head's AIE")
    mediation(s)
    s.add_argument("--compare", default="", help="an `mfv aie` output folder: print the rank correlation with it")
    _model_args(s)

    s = sub.add_parser("extract", help="a function vector from the top heads (or given heads)")
    s.add_argument("--aie", required=True, help="an `mfv aie` output folder")
    s.add_argument("--relation", required=True)
    s.add_argument("--out", default="", help="vector file (.safetensors; with --store: in the run's folder)")
    s.add_argument("--top-k", type=int, default=10)
    s.add_argument("--heads", type=_heads, default=(), help="explicit heads, e.g. 12:3,14:0")
    s.add_argument("--bias", choices=["per_head", "none"], default="per_head")
    s.add_argument("--layer", type=int)
    s.add_argument("--strength", type=float, default=1.0)
    s.add_argument("--label", default="")
    _model_args(s)

    s = sub.add_parser("sweep", help="zero-shot accuracy with the vector injected at each layer")
    s.add_argument("--vector", required=True)
    s.add_argument("--scenes", required=True)
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    s.add_argument("--split")
    s.add_argument("--n-prompts", type=int, default=100)
    s.add_argument("--layers", type=_ints)
    s.add_argument("--strengths", type=_floats, default=(1.0,), help="e.g. 1,2,4,8")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--method", choices=["fast", "reference"], default="fast")
    s.add_argument("--ks", type=_ints, default=(4,), help="K-shot ICL baselines on the same scenes")
    _model_args(s)

    s = sub.add_parser("evaluate", help="0-shot, K-shot ICL and 0-shot + vector accuracy per relation")
    s.add_argument("--scenes", required=True)
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    s.add_argument("--relations", type=_csv, default=rels)
    s.add_argument("--split")
    s.add_argument("--ks", type=_ints, default=(0, 1, 4))
    s.add_argument("--vectors", nargs="*", default=())
    s.add_argument("--layer", type=int)
    s.add_argument("--strength", type=float)
    s.add_argument("--n-prompts", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    _model_args(s)

    s = sub.add_parser("train-bundled", help="train the bundled small OpenFlamingo (resumes from --work)")
    s.add_argument("--work", default="runs/bundled-training")
    s.add_argument("--minutes", type=float, help="stop after this many minutes (run again to continue)")
    s.add_argument("--max-prompts", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--export", default="", help="write the trained model folder here at the end")
    s.add_argument("--init-from", default="", help="continue from an exported model folder (e.g. resources/bundled)")

    s = sub.add_parser("finetune", help="fine-tune a function vector (the model frozen) on zero-shot prompts")
    s.add_argument("--vector", default="", help="the extracted vector to start from (its relation and layer)")
    s.add_argument("--scenes", required=True)
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    s.add_argument("--init", choices=["extracted", "random"], default="extracted")
    s.add_argument("--relation", default="", help="default: the vector's")
    s.add_argument("--layer", type=int, help="injection layer (default: the vector's)")
    s.add_argument("--split", help="training scenes")
    s.add_argument("--val-split", help="validation scenes (default: hold out --val-fraction of --split's)")
    s.add_argument("--val-fraction", type=float, default=0.2)
    s.add_argument("--n-prompts", type=int, default=1000, help="training + validation prompts, at most")
    s.add_argument("--preset", choices=["paper", "authors"], default="paper",
                   help="paper: Adam lr 1e-3, 20 epochs, cosine, batch 16; authors: lr 1e-2, 10 epochs, batch 1")
    s.add_argument("--lr", type=float)
    s.add_argument("--epochs", type=int)
    s.add_argument("--train-batch-size", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", default="")
    _model_args(s)

    def pair(s: argparse.ArgumentParser, target: bool) -> None:
        s.add_argument("--source", default="", help="source image (it shows the relation from A to B)")
        s.add_argument("--a", default="", help="the source's anchor object A")
        s.add_argument("--b", default="", help="the source's answer B")
        if target:
            s.add_argument("--target", default="", help="target image")
            s.add_argument("--c", default="", help="the target's anchor object C")
            s.add_argument("--d", default="", help="the true answer D, if known (to score the answer)")

    weighting = dict(choices=["probability", "softmax", "equal"], default="probability",
                     help="probability (the paper: w = p / sum p), softmax (with --temperature) or equal")
    s = sub.add_parser("compose", help="a composite vector: base vectors weighted by how well each explains a "
                                       "source pair (or by given weights)")
    s.add_argument("--vectors", nargs="+", required=True)
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    pair(s, target=False)
    s.add_argument("--weights", type=_floats, default=(), help="fixed weights, one per vector")
    s.add_argument("--weighting", **weighting)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--layer", type=int, help="injection layer (default: the vectors')")
    s.add_argument("--relation", default="composite")
    s.add_argument("--label", default="")
    _model_args(s)

    s = sub.add_parser("apply", help="the model's answer on an image with and without function vectors")
    s.add_argument("--image", required=True)
    s.add_argument("--anchor", required=True, help="the anchor object the question asks about")
    s.add_argument("--vectors", nargs="+", required=True)
    s.add_argument("--layer", type=int, help="injection layer (default: the vectors')")
    s.add_argument("--strength", type=float, help="one strength for every vector (default: each vector's own)")
    s.add_argument("--top", type=int, default=5, help="predictions shown per condition")
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    _model_args(s)

    s = sub.add_parser("analogy", help="solve A:B :: C:? with a composite vector, against 0-shot and ICL "
                                       "(one analogy, or every scene of a split with --scenes)")
    s.add_argument("--vectors", nargs="+", required=True, help="the base vectors")
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    pair(s, target=True)
    s.add_argument("--scenes", default="", help="a scene set: one analogy per scene of --split")
    s.add_argument("--split")
    s.add_argument("--relations", type=_csv, default=",".join(DIAGONAL_RELATIONS))
    s.add_argument("--n-prompts", type=int, default=100)
    s.add_argument("--ks", type=_ints, default=(1, 4), help="K-shot ICL baselines")
    s.add_argument("--weighting", **weighting)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--layer", type=int)
    s.add_argument("--seed", type=int, default=0)
    _model_args(s)

    s = sub.add_parser("report", help="the paper's tables for a model and a data set: ICL, FV, FFV, novel "
                                      "objects, analogies (CSV + Markdown)")
    s.add_argument("--out", default="", help="output folder (with --store: the run's own folder)")
    s.add_argument("--scenes", default="", help="scene set with the splits below (default: generate them)")
    s.add_argument("--extract-split", default="extract")
    s.add_argument("--test-split", default="test")
    s.add_argument("--novel-split", default="novel")
    s.add_argument("--diagonal-split", default="diagonal")
    s.add_argument("--n-prompts", type=int, default=200)
    s.add_argument("--n-aie", type=int, default=200)
    _matched_args(s)
    s.add_argument("--k", type=int, default=4)
    s.add_argument("--ks", type=_ints, default=(1, 4, 8), help="K-shot ICL conditions")
    s.add_argument("--top-k", type=int, default=10)
    s.add_argument("--strengths", type=_floats, default=(1.0, 2.0, 4.0))
    s.add_argument("--preset", choices=["paper", "authors"], default="paper")
    s.add_argument("--n-finetune", type=int, default=256)
    s.add_argument("--epochs", type=int)
    s.add_argument("--seed", type=int, default=1000)
    _model_args(s)
    s.set_defaults(batch_size=32)

    _store_commands(sub)

    from mfv_desktop.backends.download import DOWNLOADS

    s = sub.add_parser("info", help="load a model and print its family, geometry and provenance")
    _model_args(s)
    s.add_argument("--check-names", type=_csv, default=(), help="object names to check are single tokens")
    s.add_argument("--files-only", action="store_true",
                   help="check the model's files and print its family, without loading it")

    s = sub.add_parser("download", help="fetch a model's files from the Hugging Face Hub into a folder, then "
                                        f"check them ({', '.join(DOWNLOADS)})")
    s.add_argument("name", metavar="MODEL", choices=list(DOWNLOADS),
                   help="; ".join(f"{d.name}: {d.title}, {d.size}" for d in DOWNLOADS.values()))
    s.add_argument("folder", metavar="FOLDER", help="where the files go (created if needed; files there are kept)")
    s = sub.add_parser("download-4b", help="the same as `mfv download openflamingo-4b FOLDER`")
    s.add_argument("folder", metavar="FOLDER")
    s.set_defaults(name="openflamingo-4b")
    return p


def _store_commands(sub) -> None:
    """Commands on the store's contents (they need --store)."""
    sub.add_parser("datasets", help="list the store's data sets")
    sub.add_parser("runs", help="list the store's runs with their status")
    sub.add_parser("vectors", help="list the store's function vectors")
    sub.add_parser("results", help="list the store's AIE results")
    s = sub.add_parser("resume", help="continue an interrupted, cancelled or failed run")
    s.add_argument("run", type=int)
    s = sub.add_parser("backups", help="list the usable backups of the store's database (newest first), or "
                                       "restore one (the current file is kept as store.sqlite.broken-TIME)")
    s.add_argument("--restore", metavar="BACKUP", help="a backup file to put in place of the database")

    s = sub.add_parser("import", help="add outside data to the store")
    what = s.add_subparsers(dest="what", required=True)
    w = what.add_parser("images", help="image files or folders (searched recursively)")
    w.add_argument("paths", nargs="+")
    w.add_argument("--dataset", default="imported")
    w = what.add_parser("gqa", help="GQA scene graphs (JSON) with their images folder")
    w.add_argument("scene_graphs")
    w.add_argument("--images", required=True)
    w.add_argument("--dataset", default="gqa")
    w = what.add_parser("metadata", help="the paper authors' synthetic metadata.csv with its images")
    w.add_argument("csv")
    w.add_argument("--images", help="images folder (default: the CSV's folder)")
    w.add_argument("--dataset", default="synthetic")
    w = what.add_parser("dataset", help="a data set exported with `mfv export dataset`")
    w.add_argument("folder")
    w.add_argument("--dataset", help="name to give it (default: its own)")
    w = what.add_parser("vector", help="a function vector file (.safetensors)")
    w.add_argument("file")
    w.add_argument("--model", help="check that the vector fits this model before adding it")

    s = sub.add_parser("export", help="write store contents to files")
    what = s.add_subparsers(dest="what", required=True)
    w = what.add_parser("dataset", help="a data set as dataset.json + images/")
    w.add_argument("name")
    w.add_argument("folder")
    w = what.add_parser("vector", help="a vector as .safetensors + .json")
    w.add_argument("id", type=int)
    w.add_argument("folder")
    w = what.add_parser("aie", help="an AIE matrix as CSV and NPY")
    w.add_argument("id", type=int)
    w.add_argument("folder")
    w = what.add_parser("evaluations", help="evaluation results as CSV")
    w.add_argument("file")
    w.add_argument("--run", type=int)


STORE_COMMANDS = {"datasets", "runs", "vectors", "results", "resume", "import", "export", "backups"}


def _spec_from_args(a: argparse.Namespace):
    from mfv_desktop import jobs

    cmd = a.command
    if cmd == "run":
        return jobs.ChainSpec(out=a.out, relations=a.relations, n_extract=a.n_extract, n_test=a.n_test, k=a.k,
                              n_prompts=a.n_prompts, top_k=a.top_k, strengths=a.strengths, canvas=a.canvas,
                              seed=a.seed, **_model_kw(a))
    if cmd == "generate":
        return jobs.GenerateSpec(out=a.out, n_scenes=a.n_scenes, seed=a.seed, split=a.split, diagonal=a.diagonal,
                                 novel=a.novel, n_novel=a.n_novel, kinds=a.kinds, canvas=a.canvas,
                                 min_size=a.min_size, max_size=a.max_size)
    if cmd == "tasks":
        return jobs.TasksSpec(scenes=a.scenes, out=a.out, relations=a.relations, k=a.k, task_kind=a.task_kind,
                              corruption=a.corruption, seed=a.seed, split=a.split,
                              max_per_relation=a.max_per_relation)
    if cmd == "aie":
        return jobs.AIESpec(scenes=a.scenes, out=a.out, relations=a.relations, k=a.k, n_prompts=a.n_prompts,
                            split=a.split, corruption=a.corruption, seed=a.seed, only_correct=a.only_correct,
                            matched_only=a.matched_only, method=a.method, **_model_kw(a))
    if cmd == "preview":
        return jobs.PreviewSpec(scenes=a.scenes, out=a.out, relations=a.relations, k=a.k, n_prompts=a.n_prompts,
                                split=a.split, corruption=a.corruption, seed=a.seed, only_correct=a.only_correct,
                                matched_only=a.matched_only, compare=a.compare, **_model_kw(a))
    if cmd == "extract":
        return jobs.ExtractSpec(aie=a.aie, relation=a.relation, out=a.out, top_k=a.top_k, heads=a.heads,
                                bias=a.bias, layer=a.layer, strength=a.strength, label=a.label, **_model_kw(a))
    if cmd == "sweep":
        return jobs.SweepSpec(vector=a.vector, scenes=a.scenes, out=a.out, split=a.split, n_prompts=a.n_prompts,
                              layers=a.layers, strengths=a.strengths, seed=a.seed, method=a.method,
                              ks=a.ks, **_model_kw(a))
    if cmd == "evaluate":
        return jobs.EvaluateSpec(scenes=a.scenes, out=a.out, relations=a.relations, split=a.split, ks=a.ks,
                                 vectors=tuple(a.vectors), layer=a.layer, strength=a.strength,
                                 n_prompts=a.n_prompts, seed=a.seed, **_model_kw(a))
    if cmd == "finetune":
        return jobs.FinetuneSpec(vector=a.vector, scenes=a.scenes, out=a.out, init=a.init, relation=a.relation,
                                 layer=a.layer, split=a.split, val_split=a.val_split, val_fraction=a.val_fraction,
                                 n_prompts=a.n_prompts, preset=a.preset, lr=a.lr, epochs=a.epochs,
                                 train_batch_size=a.train_batch_size, seed=a.seed, label=a.label, **_model_kw(a))
    if cmd == "compose":
        return jobs.ComposeSpec(vectors=tuple(a.vectors), out=a.out, source_image=a.source, source_anchor=a.a,
                                source_answer=a.b, weights=a.weights, weighting=a.weighting,
                                temperature=a.temperature, layer=a.layer, relation=a.relation, label=a.label,
                                **_model_kw(a))
    if cmd == "apply":
        return jobs.ApplySpec(image=a.image, anchor=a.anchor, vectors=tuple(a.vectors), layer=a.layer,
                              strength=a.strength, top=a.top, out=a.out, **_model_kw(a))
    if cmd == "analogy":
        return jobs.AnalogySpec(vectors=tuple(a.vectors), out=a.out, source_image=a.source, source_anchor=a.a,
                                source_answer=a.b, target_image=a.target, target_anchor=a.c, target_answer=a.d,
                                scenes=a.scenes, split=a.split, relations=a.relations, n_prompts=a.n_prompts,
                                ks=a.ks, weighting=a.weighting, temperature=a.temperature, layer=a.layer,
                                seed=a.seed, **_model_kw(a))
    if cmd == "report":
        return jobs.ReportSpec(out=a.out, scenes=a.scenes, extract_split=a.extract_split, test_split=a.test_split,
                               novel_split=a.novel_split, diagonal_split=a.diagonal_split, n_prompts=a.n_prompts,
                               n_aie=a.n_aie, matched_only=a.matched_only, k=a.k, ks=a.ks, top_k=a.top_k,
                               strengths=a.strengths, preset=a.preset, n_finetune=a.n_finetune, epochs=a.epochs,
                               seed=a.seed, **_model_kw(a))
    if cmd == "train-bundled":
        return jobs.TrainBundledSpec(work=a.work, minutes=a.minutes, max_prompts=a.max_prompts, seed=a.seed,
                                     export=a.export, init_from=a.init_from)
    raise SystemExit(f"unknown command {cmd}")


def _out_folder(spec) -> Path:
    out = Path(getattr(spec, "out"))
    return out.parent if out.suffix else out


def _info(a: argparse.Namespace) -> int:
    """First line `family: geometry` (or, with --files-only, `family: the files of MODEL_ID are in
    place`), then the provenance (or the files checked) as JSON."""
    from mfv_desktop.backends import load_backend
    from mfv_desktop.backends.download import check_model, describe_geometry
    from mfv_desktop.progress import drive
    from mfv_desktop.scenes import check_single_token

    if a.files_only:
        result = drive(check_model(a.model, load=False))
        print(f"{result['family']}: the files of {result['model_id']} are in place (not loaded)")
        print(json.dumps(result, indent=1, default=str))
        return 0
    b = load_backend(a.model, a.device, a.dtype)
    print(f"{b.family}: {describe_geometry(b.geometry.to_json())}")
    print(json.dumps({"family": b.family, **b.provenance()}, indent=1))
    if a.check_names:
        check_single_token(a.check_names, b.token_count, b.model_id)
        print(f"all {len(a.check_names)} names are single tokens for {b.model_id}")
    return 0


class _Bar:
    """A tqdm progress bar on stderr, driven by job Progress."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def __call__(self, p) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self.bar is None or self.bar.total != p.total:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=p.total, file=sys.stderr, dynamic_ncols=True, leave=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        self.bar.set_description_str(p.message[:48])
        self.bar.n = p.done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mfv_desktop.errors import BackendError
    from mfv_desktop.scenes.model import SceneError
    from mfv_desktop.store.errors import StoreError
    from mfv_desktop.tasks import TaskError

    store = None
    try:
        if args.command == "info":
            return _info(args)
        if args.command in ("download", "download-4b"):
            from mfv_desktop.backends.download import download_model
            from mfv_desktop.progress import drive

            bar = _Bar(args.quiet)
            try:
                print(json.dumps(drive(download_model(args.name, args.folder), bar), indent=1, default=str))
            finally:
                bar.close()
            return 0
        if args.store is None and args.command in STORE_COMMANDS:
            raise StoreError("this command needs a store: add --store (the default data folder) or --store DATA_DIR")
        if args.store is None and getattr(args, "out", None) == "":
            raise StoreError("say where the results go: --out PATH (or --store to keep them in the store)")
        if args.command == "backups":  # works on a store that does not open
            return _backups(args)
        if args.store is not None:
            from mfv_desktop.store import open_store

            store = open_store(args.store or None, read_only=args.read_only)
        bar = _Bar(args.quiet)
        try:
            if args.command in STORE_COMMANDS:
                return _store_command(store, args, bar)
            summary, out = _run_job(store, args, bar)
        finally:
            bar.close()
    except (BackendError, SceneError, TaskError, StoreError, OSError, ValueError) as e:
        print(f"mfv {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mfv {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if store is not None:
            store.close()
    if args.command == "run":
        _print_table(summary["evaluation"])
        print(f"results in {out.resolve()}")
    elif args.command == "report":
        print(Path(summary["file"]).read_text())
        print(f"results in {out.resolve()}")
    else:
        print(json.dumps(summary, indent=1, default=str))
    return 0


def _backups(a: argparse.Namespace) -> int:
    from mfv_desktop.store.db import restore_backup, usable_backups
    from mfv_desktop.store.paths import default_data_dir

    data_dir = Path(a.store).expanduser() if a.store else default_data_dir()
    if a.restore:
        kept = restore_backup(data_dir, a.restore)
        print(f"restored {a.restore} as {data_dir / 'store.sqlite'}"
              + (f"; the previous file is {kept}" if kept else ""))
        return 0
    found = usable_backups(data_dir)
    for b in found:
        print(json.dumps({"path": str(b.path), "revision": b.revision, "time": time.ctime(b.time)}))
    if not found:
        print(f"no usable backups in {data_dir / 'backups'}", file=sys.stderr)
    return 0


def _run_job(store, args: argparse.Namespace, bar) -> tuple[dict, Path]:
    from mfv_desktop.jobs import JOBS, execute

    spec = _spec_from_args(args)
    if store is None:
        return execute(spec, JOBS[spec.kind][1], _out_folder(spec), on_progress=bar), Path(getattr(spec, "out", "."))
    from mfv_desktop.jobs.stored import run_in_store

    run_id, summary = run_in_store(store, spec, on_progress=bar, dataset=getattr(args, "dataset", None))
    print(f"run {run_id} done", file=sys.stderr)
    return summary, store.runs_dir / str(run_id)


def _store_command(store, a: argparse.Namespace, bar) -> int:
    from mfv_desktop.progress import drive
    from mfv_desktop.store import exchange
    from mfv_desktop.store import scenes as repo

    def show(rows: list[dict]) -> None:
        for r in rows:
            print(json.dumps(r, default=str))

    cmd = a.command
    if cmd == "datasets":
        show(repo.datasets(store))
    elif cmd in ("runs", "vectors", "results"):
        from dataclasses import asdict

        from mfv_desktop.store import runs, vectors

        cols = {"runs": ["id", "kind", "status", "done", "total", "message", "seconds", "out"],
                "vectors": ["id", "label", "relation", "kind", "model_id", "layer", "strength", "heads"],
                "results": ["id", "relation", "model_id", "k", "n_prompts", "clean_accuracy", "run_id"]}[cmd]
        if cmd == "runs":
            found = [asdict(r) for r in runs.list_runs(store, newest_first=False)]
        elif cmd == "vectors":
            found = sorted(vectors.list_vectors(store), key=lambda v: v["id"])
        else:
            found = [asdict(r) for r in runs.list_aie_results(store)]
        rows = [{c: r[c] for c in cols} for r in found]
        if cmd == "results":  # which corrupted prompts each AIE averages over, as recorded with it
            from mfv_desktop.jobs.science import averaging_text

            for d, r in zip(rows, found):
                d["matched_only"] = bool(r["provenance"].get("matched_only"))
                d["averaged_over"] = averaging_text({**r["provenance"], "n_prompts": r["n_prompts"]})
        show(rows)
    elif cmd == "resume":
        from mfv_desktop.jobs.stored import resume

        run_id, summary = resume(store, a.run, on_progress=bar)
        print(json.dumps(summary, indent=1, default=str))
    elif cmd == "import":
        if a.what == "images":
            res = drive(exchange.import_images(store, a.paths, a.dataset), bar)
        elif a.what == "gqa":
            res = drive(exchange.import_gqa(store, a.scene_graphs, a.images, a.dataset), bar)
        elif a.what == "metadata":
            res = drive(exchange.import_synthetic_metadata(store, a.csv, a.dataset, a.images), bar)
        elif a.what == "dataset":
            res = drive(exchange.import_dataset_export(store, a.folder, a.dataset), bar)
        else:
            from mfv_desktop.jobs.stored import import_vector

            res = {"vector": import_vector(store, a.file, model=a.model or None)}
        print(json.dumps(res, indent=1, default=str))
    else:  # export
        if a.what == "dataset":
            res = exchange.export_dataset(store, a.name, a.folder)
        elif a.what == "vector":
            res = exchange.export_vector(store, a.id, a.folder)
        elif a.what == "aie":
            res = exchange.export_aie(store, a.id, a.folder)
        else:
            res = exchange.export_evaluations(store, a.file, a.run)
        print(res)
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'relation':<12} {'condition':<40} {'n':>4} {'accuracy':>9}")
    for r in rows:
        print(f"{r['relation']:<12} {r['condition']:<40} {r['n']:>4} {r['accuracy']:>9.3f}")


if __name__ == "__main__":
    sys.exit(main())
