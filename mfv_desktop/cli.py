"""`mfv`: every job headless. Each job command builds the same job spec the GUI builds: its options are
generated from the spec's fields (specs.py: names, defaults, help), so a default is written once."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mfv_desktop import __version__
from mfv_desktop.compute import add_compute_options, compute_of, computed_on
from mfv_desktop.progress import TextBar


def _csv(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def _head(s: str) -> tuple[int, int]:
    """'12:3' -> (12, 3)"""
    layer, _, head = s.partition(":")
    return int(layer), int(head)


def _parser(tp: Any) -> tuple[Callable[[str], Any], tuple[str, ...] | None]:
    """How the CLI reads a field of type `tp` (None taken off): a function of one string, and the
    choices a Literal allows. A tuple is one comma-separated argument ('12:3,14:0' for heads)."""
    args = [t for t in typing.get_args(tp) if t is not type(None)]
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return _parser(args[0])
    if typing.get_origin(tp) is typing.Literal:
        return str, tuple(args)
    if typing.get_origin(tp) is tuple:
        one = _head if args[0] == tuple[int, int] else _parser(args[0])[0]
        return (lambda s: tuple(one(x) for x in _csv(s))), None
    return tp, None


def _add_fields(p: Any, cls: Any, default: Any, prefix: str = "") -> None:
    """One option (or argument) per field of the dataclass `cls`, its default `default`'s; a nested
    dataclass (the ModelRef, a TaskSpec) gets a group, its options named by its own fields."""
    from mfv_desktop.specs import CHOICES, flags

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, value, m, dest = hints[f.name], getattr(default, f.name), f.metadata, prefix + f.name
        if dataclasses.is_dataclass(tp):
            _add_fields(p.add_argument_group(f.name, m.get("help")), tp, value, f"{dest}.")
            continue
        help = m.get("help", "") + EXTRA_HELP.get(dest, "") or None
        if tp is bool and m.get("off"):  # default True: --off sets False; --on (beside it) sets it back
            g = p.add_mutually_exclusive_group() if m.get("on") else p
            if m.get("on"):
                g.add_argument(m["on"], dest=dest, action="store_true", default=value, help=help)
            g.add_argument(m["off"], dest=dest, action="store_false", default=value, help=m.get("off_help", help))
            continue
        if tp is bool:
            p.add_argument(*flags(f), dest=dest, action="store_true", default=value, help=help)
            continue
        parse, choices = _parser(tp)
        kw: dict[str, Any] = {
            "default": value,
            "help": help,
            "choices": m.get("choices") or CHOICES.get(f.name) or choices,
        }
        if m.get("nargs"):
            kw.update(nargs=m["nargs"], type=_parser(typing.get_args(tp)[0])[0])
        else:
            kw.update(type=parse)
        if m.get("positional"):
            p.add_argument(dest, nargs="?" if m["positional"] == "?" else None, **kw)
        else:
            metavar = None if kw["choices"] else f.name.upper()
            p.add_argument(*flags(f), dest=dest, required=bool(m.get("required")), metavar=metavar, **kw)


#: job command -> (job kind, help); each command's options are its spec's fields
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("chain", "the whole chain: scenes -> AIE -> vectors -> layer sweep -> evaluation"),
    "generate": (
        "generate",
        ("generate synthetic scenes (the paper's layout) into a folder (or, with --store, into a data set)"),
    ),
    "tasks": ("tasks", "build a task set (clean, corrupted or zero-shot prompts)"),
    "aie": ("aie", "mean head activations and average indirect effects per relation"),
    "preview": ("preview", "attribution patching: a quick linear estimate of every head's AIE"),
    "extract": ("extract", "a function vector from the top heads (or given heads)"),
    "sweep": ("sweep", "zero-shot accuracy with the vector injected at each layer"),
    "evaluate": ("evaluate", "0-shot, K-shot ICL and 0-shot + vector accuracy per relation"),
    "finetune": ("finetune", "fine-tune a function vector (the model frozen) on zero-shot prompts"),
    "compose": (
        "compose",
        ("a composite vector: base vectors weighted by how well each explains a source pair (or by given weights)"),
    ),
    "apply": ("apply", "the model's answer on an image with and without function vectors"),
    "analogy": (
        "analogy",
        (
            "solve A:B :: C:? with a composite vector, against 0-shot and ICL (one analogy, or "
            "every scene of a split with --scenes)"
        ),
    ),
    "report": (
        "report",
        ("the paper's tables for a model and a data set: ICL, FV, FFV, novel objects, analogies (CSV + Markdown)"),
    ),
}
EXTRA_HELP: dict[str, str] = {}


def build_parser() -> argparse.ArgumentParser:
    from mfv_desktop.backends.registry import FAMILIES
    from mfv_desktop.specs import SPECS, ModelRef

    tiny = ", ".join(f"'{f.tiny_ref}' ({f.name})" for f in FAMILIES.values())
    EXTRA_HELP["model.model"] = (
        f"; tiny ones: {tiny} (NAME:SEED for another seed); `mfv info --model FOLDER --files-only` checks a folder"
    )
    p = argparse.ArgumentParser(prog="mfv", description="Multimodal function vectors, headless.")
    p.add_argument("--version", action="version", version=f"mfv {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--store",
        nargs="?",
        const="",
        default=None,
        metavar="DATA_DIR",
        help="record runs and read/write data in the store in DATA_DIR (alone: the default data "
        "folder, or $MFV_DATA_DIR). Jobs then write into the store's runs/ folder and "
        "--scenes may name a data set as dataset:NAME",
    )
    p.add_argument("--read-only", action="store_true", help="open the store read-only (beside a running app)")
    add_compute_options(p)
    sub = p.add_subparsers(dest="command", required=True)
    for name, (kind, help) in COMMANDS.items():
        s = sub.add_parser(name, help=help)
        _add_fields(s, SPECS[kind], SPECS[kind]())
        if name == "generate":
            s.add_argument("--dataset", default="generated", help="with --store: the data set to add the scenes to")

    _store_commands(sub)

    from mfv_desktop.backends.download import DOWNLOADS

    s = sub.add_parser("info", help="load a model and print its family, geometry and provenance")
    _add_fields(s, ModelRef, ModelRef())
    s.add_argument("--batch-size", type=int, default=16, help=argparse.SUPPRESS)  # accepted, as before
    s.add_argument("--check-names", type=_csv, default=(), help="object names to check are single tokens")
    s.add_argument(
        "--files-only", action="store_true", help="check the model's files and print its family, without loading it"
    )

    s = sub.add_parser(
        "download",
        help=f"fetch a model's files from the Hugging Face Hub into a folder, then check them ({', '.join(DOWNLOADS)})",
    )
    s.add_argument(
        "name",
        metavar="MODEL",
        choices=list(DOWNLOADS),
        help="; ".join(f"{d.name}: {d.title}, {d.size}" for d in DOWNLOADS.values()),
    )
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
    s = sub.add_parser("prompts", help="list what a run measured: each prompt's expected and predicted answer")
    s.add_argument("run", type=int)
    s.add_argument("--relation")
    s.add_argument("--condition", help="e.g. clean, corrupted, 0-shot, 'L3 ×1.0', '1-shot ICL'")
    s.add_argument("--wrong", action="store_true", help="only the prompts answered wrongly")
    s = sub.add_parser(
        "backups",
        help="list the usable backups of the store's database (newest first), or "
        "restore one (the current file is kept as store.sqlite.broken-TIME)",
    )
    s.add_argument("--restore", metavar="BACKUP", help="a backup file to put in place of the database")

    s = sub.add_parser("import", help="add outside data to the store")
    what = s.add_subparsers(dest="what", required=True)
    w = what.add_parser("images", help="image files or folders (searched recursively)")
    w.add_argument("paths", nargs="+")
    w.add_argument("--dataset", default="imported")
    from mfv_desktop.import_specs import GQAImportSpec

    w = what.add_parser(
        "gqa",
        help="GQA scene graphs (JSON) with their images folder; prints what was kept and why the rest was dropped",
    )
    _add_fields(w, GQAImportSpec, GQAImportSpec())
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


STORE_COMMANDS = {"datasets", "runs", "vectors", "results", "prompts", "resume", "import", "export", "backups"}


def _spec_from_args(a: argparse.Namespace, cls: Any = None, prefix: str = "") -> Any:
    """The spec of a job command: each field from its option (a nested dataclass from its group's)."""
    from mfv_desktop.specs import SPECS

    cls = cls or SPECS[COMMANDS[a.command][0]]
    kw = {}
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        value = (
            _spec_from_args(a, tp, f"{prefix}{f.name}.")
            if dataclasses.is_dataclass(tp)
            else getattr(a, prefix + f.name)
        )
        kw[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kw)


def _out_folder(spec) -> Path:
    out = Path(spec.out)
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

            bar = TextBar(args.quiet)
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
        bar = TextBar(args.quiet)
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
        print(
            f"restored {a.restore} as {data_dir / 'store.sqlite'}" + (f"; the previous file is {kept}" if kept else "")
        )
        return 0
    found = usable_backups(data_dir)
    for b in found:
        print(json.dumps({"path": str(b.path), "revision": b.revision, "time": time.ctime(b.time)}))
    if not found:
        print(f"no usable backups in {data_dir / 'backups'}", file=sys.stderr)
    return 0


def _run_job(store, args: argparse.Namespace, bar) -> tuple[dict, Path]:
    from mfv_desktop.jobs import JOBS, execute
    from mfv_desktop.progress import drive

    spec, compute = _spec_from_args(args), compute_of(args)
    if store is None:
        job = execute(spec, JOBS[spec.kind][1], _out_folder(spec))
        return drive(computed_on(job, compute), bar), Path(getattr(spec, "out", "."))
    from mfv_desktop.jobs.stored import run_in_store

    run = run_in_store(store, spec, dataset=getattr(args, "dataset", None))
    run_id, summary = drive(computed_on(run, compute), bar)
    print(f"run {run_id} done", file=sys.stderr)
    return summary, store.runs_dir / str(run_id)


def _store_command(store, a: argparse.Namespace, bar) -> int:
    from mfv_desktop.progress import drive
    from mfv_desktop.store import exchange
    from mfv_desktop.store import scenes as repo

    def show(rows: Sequence[Mapping[str, Any]]) -> None:
        for r in rows:
            print(json.dumps(r, default=str))

    cmd = a.command
    if cmd == "datasets":
        show(repo.datasets(store))
    elif cmd in ("runs", "vectors", "results"):
        from dataclasses import asdict

        from mfv_desktop.store import runs, vectors

        cols = {
            "runs": ["id", "kind", "status", "done", "total", "message", "seconds", "out"],
            "vectors": ["id", "label", "relation", "kind", "model_id", "layer", "strength", "heads"],
            "results": ["id", "relation", "model_id", "k", "n_prompts", "clean_accuracy", "run_id"],
        }[cmd]
        if cmd == "runs":
            found = [asdict(r) for r in runs.list_runs(store, newest_first=False)]
        elif cmd == "vectors":
            found = sorted(vectors.list_vectors(store), key=lambda v: v["id"])
        else:
            found = [asdict(r) for r in runs.list_aie_results(store)]
        rows = [{c: r[c] for c in cols} for r in found]
        if cmd == "results":  # which corrupted prompts each AIE averages over, as recorded with it
            from mfv_desktop.jobs.mediation import averaging_text

            for d, r in zip(rows, found):
                d["matched_only"] = bool(r["provenance"].get("matched_only"))
                d["averaged_over"] = averaging_text({**r["provenance"], "n_prompts": r["n_prompts"]})
        show(rows)
    elif cmd == "prompts":
        from mfv_desktop.jobs.prompts import listing

        print("\n".join(listing(store, a.run, a.relation, a.condition, a.wrong)) or f"run {a.run} recorded no prompts")
    elif cmd == "resume":
        from mfv_desktop.jobs.stored import resume

        run_id, summary = drive(computed_on(resume(store, a.run), compute_of(a)), bar)
        print(json.dumps(summary, indent=1, default=str))
    elif cmd == "import":
        res: Mapping[str, Any]
        if a.what == "images":
            res = drive(exchange.import_images(store, a.paths, a.dataset), bar)
        elif a.what == "gqa":
            from mfv_desktop.import_specs import GQAImportSpec
            from mfv_desktop.scenes.importers import GQAReport

            gqa = _spec_from_args(a, GQAImportSpec)
            gqa.validate()
            res = drive(exchange.import_gqa(store, gqa.scene_graphs, gqa.images, gqa.dataset, gqa.options()), bar)
            print("\n".join(GQAReport.from_dict(res["report"]).lines()))
            res = {k: v for k, v in res.items() if k != "report"}  # the report's lines above; in full in the run
        elif a.what == "metadata":
            res = drive(exchange.import_synthetic_metadata(store, a.csv, a.dataset, a.images), bar)
        elif a.what == "dataset":
            res = drive(exchange.import_dataset_export(store, a.folder, a.dataset), bar)
        else:
            from mfv_desktop.jobs.stored import import_vector

            res = {"vector": import_vector(store, a.file, model=a.model or None)}
        print(json.dumps(res, indent=1, default=str))
    else:  # export
        written: Path | tuple[Path, Path]
        if a.what == "dataset":
            written = exchange.export_dataset(store, a.name, a.folder)
        elif a.what == "vector":
            written = exchange.export_vector(store, a.id, a.folder)
        elif a.what == "aie":
            written = exchange.export_aie(store, a.id, a.folder)
        else:
            written = exchange.export_evaluations(store, a.file, a.run)
        print(written)
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'relation':<12} {'condition':<40} {'n':>4} {'accuracy':>9}")
    for r in rows:
        print(f"{r['relation']:<12} {r['condition']:<40} {r['n']:>4} {r['accuracy']:>9.3f}")


if __name__ == "__main__":
    sys.exit(main())
