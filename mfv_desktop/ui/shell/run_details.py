"""A run of the Jobs panel in words: what it did, on which data and model, its status, when and how
long, the numbers of its result (clean accuracy, the largest indirect effect, accuracies, the vector
it made), its error with the traceback; the raw spec and result (JSON) one tab away. `describe_run`
is the form as (label, text) rows, without Qt."""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QPlainTextEdit, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from mfv_desktop.store.runs import RunView

#: what a kind of run does, in the paper's words
KINDS = {
    "aie": "AIE: the average indirect effect of every attention head",
    "preview": "AIE preview: attribution patching's estimate of every head's indirect effect",
    "extract": "a function vector from the top heads of an AIE result",
    "sweep": "layer sweep: a vector added at each layer and strength",
    "evaluate": "evaluation: accuracy with and without vectors",
    "finetune": "fine-tuning a function vector",
    "apply": "apply: a vector added on an image's zero-shot prompt",
    "compose": "a composite vector",
    "analogy": "analogy: A is to B as C is to ?",
    "generate": "synthetic scenes",
    "import": "images imported as scenes",
    "tasks": "a task set",
    "chain": "the whole chain: AIE, vectors, evaluation",
    "report": "the paper's report tables",
}
#: spec fields that say which data a run used: how each reads ({} is its value)
DATA_FIELDS = (
    ("scenes", "{}"),
    ("aie", "from {}"),
    ("vector", "{}"),
    ("vectors", "{}"),
    ("image", "image {}"),
    ("source_image", "source image {}"),
    ("target_image", "target image {}"),
    ("relations", "relations {}"),
    ("relation", "relation {}"),
    ("anchor", "anchor {}"),
    ("split", "split {}"),
    ("n_prompts", "{} prompts"),
    ("k", "{} demonstrations per prompt"),
    ("n_scenes", "{} scenes"),
)
REF_NAMES = {"dataset": "data set", "vector": "vector", "aie": "AIE result", "run": "run"}


def _ref(value: Any) -> str:
    """`dataset:sample` -> data set sample, `vector:7` -> vector 7; a path -> its last parts."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_ref(v) for v in value)
    text = str(value)
    kind, sep, rest = text.partition(":")
    if sep and kind in REF_NAMES:
        return f"{REF_NAMES[kind]} {rest}"
    if "/" in text:
        return "…/" + "/".join(text.rstrip("/").split("/")[-2:])
    return text


def _num(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return f"{x:.3g}" if abs(x) < 0.1 else f"{x:.3f}" if abs(x) < 1 else f"{x:.2f}"


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _relation_line(rel: str, r: dict[str, Any]) -> str:
    parts = []
    if "clean_accuracy" in r:
        parts.append(f"clean accuracy {r['clean_accuracy']:.2f}")
    if "max" in r:
        where = ""
        if isinstance(r.get("argmax"), (list, tuple)) and len(r["argmax"]) == 2:
            where = f" at layer {r['argmax'][0]}, head {r['argmax'][1]}"
        parts.append(f"AIE max {_num(r['max'])}{where}")
    if "base_prob" in r:
        parts.append(f"corrupted baseline {_num(r['base_prob'])}")
    if "n_prompts" in r:
        kept = f" ({r['n_matched']} of {r['n_corrupted']} kept)" if "n_matched" in r and "n_corrupted" in r else ""
        parts.append(f"{r['n_prompts']} prompts{kept}")
    return f"{rel}: " + " · ".join(parts)


def describe_result(result: dict[str, Any] | None) -> list[str]:
    """The numbers of a run's result, one line each."""
    if not result:
        return []
    lines: list[str] = []
    rest = dict(result)
    rels = rest.pop("relations", None)
    if isinstance(rels, dict):
        lines += [_relation_line(k, v) for k, v in rels.items() if isinstance(v, dict)]
    rows = rest.pop("rows", None)
    if isinstance(rows, list):
        for r in rows:
            if isinstance(r, dict) and "accuracy" in r:
                who = " ".join(str(r[k]) for k in ("relation", "condition") if r.get(k) is not None)
                lines.append(f"{who}: accuracy {r['accuracy']:.3f}" + (f" (n {r['n']})" if "n" in r else ""))
    if "vector" in rest:
        lines.append(f"made {_ref(rest.pop('vector'))}")
    heads = rest.pop("heads", None)
    if isinstance(heads, list):
        lines.append(f"{len(heads)} heads: " + ", ".join(f"{h[0]}:{h[1]}" for h in heads[:12] if len(h) == 2))
    for key in ("best_layer", "best_strength", "best_accuracy"):
        if key in rest:
            lines.append(f"{key.replace('_', ' ')} {_num(rest.pop(key))}")
    for key in ("start_val_accuracy", "val_accuracy"):
        if key in rest:
            lines.append(f"{key.replace('_', ' ').replace('val ', 'validation ')} {_num(rest.pop(key))}")
    for key, value in rest.items():  # other plain numbers and words; matrices and histories stay in the spec tab
        if isinstance(value, (int, float, str)) and key not in ("folder", "file", "hash"):
            lines.append(f"{key.replace('_', ' ')} {_num(value)}")
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            lines.append(
                f"{key.replace('_', ' ')}: {len(value)} ({', '.join(value[:6])}{'…' if len(value) > 6 else ''})"
            )
    return lines


def error_text(run: RunView | None, folder: Path | None, error: str = "", tb: str = "") -> str:
    """A job's error with its traceback, or else the run's with the traceback its run.json keeps
    ("Error: …" first); "" without one."""
    if error:
        return f"Error: {error}\n{tb}".rstrip()
    if run is None or not run.error:
        return ""
    try:
        tb = json.loads((folder / "run.json").read_text()).get("traceback", "") if folder else ""
    except (OSError, ValueError):
        tb = ""
    return f"Error: {run.error}\n{tb}".rstrip()


def describe_run(run: RunView | None, what: str = "", status: str = "") -> list[tuple[str, str]]:
    """The form: (label, text) rows. `what`: this session's name for the job; `status`: its live one."""
    rows: list[tuple[str, str]] = []
    if run is None:
        if what:
            rows += [("job", what), ("status", status or "queued"), ("run", "not recorded in the store yet")]
        return rows
    spec = run.spec or {}
    rows.append(("run", f"run {run.id}" + (f" · {what}" if what and what != run.kind else "")))
    rows.append(("what", KINDS.get(run.kind, run.kind)))
    data = [form.format(_ref(spec[key])) for key, form in DATA_FIELDS if spec.get(key) not in (None, "", [], ())]
    if run.provenance.get("dataset"):
        data.append(f"into data set {run.provenance['dataset']}")
    if data:
        rows.append(("data", " · ".join(data)))
    model = spec.get("model")
    if isinstance(model, dict):
        rows.append(("model", " · ".join(str(model.get(k, "")) for k in ("model", "device", "dtype"))))
    live = status or run.status
    rows.append(("status", live + (f" · {run.message}" if run.message and run.message != live else "")))
    if run.started or run.created:
        rows.append(("when", f"started {_when(run.started or run.created)}"))
    if run.seconds is not None:
        rows.append(("took", _took(run.seconds) + (f" · ended {_when(run.finished)}" if run.finished else "")))
    elif run.started and live == "running":
        rows.append(("took", f"{_took(time.time() - run.started)} so far"))
    for i, line in enumerate(describe_result(run.result)):
        rows.append(("result" if i == 0 else "", line))
    return rows


class RunDetails(QWidget):
    """The form of the selected run (tab "Details") and its raw spec and result (tab "Spec")."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.form = QTextBrowser(self)
        self.form.setOpenLinks(False)
        self.form.setPlaceholderText("select a run to see what it did, on which data and model, and its numbers")
        self.spec = QPlainTextEdit(self)
        self.spec.setReadOnly(True)
        self.spec.setPlaceholderText("the selected run's spec and result, as recorded (JSON)")
        self.tabs.addTab(self.form, "Details")
        self.tabs.addTab(self.spec, "Spec (JSON)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    def show_run(
        self, run: RunView | None, what: str = "", status: str = "", error: str = "", notes: tuple[str, ...] = ()
    ) -> None:
        """A run (or a job without one) with its error and traceback (`error`) and `notes` below."""
        html = []
        if error:
            head, _, tb = error.partition("\n")
            html.append(f"<p style='color:#b00020'><b>{escape(head)}</b></p>")
            if tb.strip():
                html.append(f"<pre>{escape(tb.strip())}</pre>")
        rows = describe_run(run, what, status)
        if rows:
            dim = self._dim()
            cells = "".join(
                f"<tr><td style='padding-right:10px; color:{dim}'>{escape(k)}</td><td>{escape(v)}</td></tr>"
                for k, v in rows
            )
            html.append(f"<table cellspacing='0' cellpadding='1'>{cells}</table>")
        html += [f"<p>{escape(n)}</p>" for n in notes]
        self.form.setHtml("".join(html))
        raw = []
        if run is not None:
            raw.append("spec: " + json.dumps(run.spec, indent=1, default=str))
            if run.result:
                raw.append("result: " + json.dumps(run.result, indent=1, default=str)[:20000])
        self.spec.setPlainText("\n\n".join(raw))

    def _dim(self) -> str:
        """The labels' colour: between the text and the background, in the light theme and the dark."""
        p = self.form.palette()
        t, b = p.color(QPalette.ColorRole.Text), p.color(QPalette.ColorRole.Base)
        mix = (round(0.6 * x + 0.4 * y) for x, y in ((t.red(), b.red()), (t.green(), b.green()), (t.blue(), b.blue())))
        return "#" + "".join(f"{c:02x}" for c in mix)

    def text(self) -> str:
        """The form as plain text (what a user reads)."""
        return self.form.toPlainText()

    def spec_text(self) -> str:
        return self.spec.toPlainText()

    def clear(self) -> None:
        self.form.clear()
        self.spec.clear()
