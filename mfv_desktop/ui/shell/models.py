"""The model manager: choose the model every job runs on (the bundled model, the tiny random model
of any family, or a model folder of any family: the family is told from its files as soon as a
folder is chosen), the device and the precision; check a folder's files and load the model in a
worker job (its geometry and load time are shown); download a listed model (backends/download.py's
DOWNLOADS) when huggingface_hub is installed and there is a network. Errors name the missing file and
what to put there. Families come from the registry (backends/registry.py); nothing here imports
torch: checking and loading happen in jobs."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.backends.download import DOWNLOADS, describe_geometry
from mfv_desktop.backends.registry import FAMILIES, folder_family, parse_ref
from mfv_desktop.errors import BackendError
from mfv_desktop.progress import Progress
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.settings import get

if TYPE_CHECKING:
    from mfv_desktop.ui.shell.jobs import Job

DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("fp32", "bf16", "fp16")
CHOICES = (
    ("bundled", "Bundled model", "the small OpenFlamingo trained by this project (6 layers, fast on a CPU)"),
    ("tiny", "Tiny test model", "a tiny random model of the family chosen, built on first use (for trying things out)"),
    (
        "folder",
        "A model folder",
        "a local folder of any family this app knows ({families}); its family is told from its files",
    ),
)
HINT_STYLE = "color: palette(mid); margin-left: 22px;"


def can_download() -> bool:
    return importlib.util.find_spec("huggingface_hub") is not None


def describe_check(r: dict[str, Any]) -> str:
    """What a check found, in words."""
    lines = [f"✓ {r['model_id']} (family {r['family']})", f"folder {r['folder']}"]
    lines += [f"  {k}: {v}" for k, v in r.get("files", {}).items() if v]
    g = r.get("geometry")
    if g:
        lines += [
            describe_geometry(g),
            f"loaded on {r['device']} ({r['dtype']}) in {r['load_s']:.2f} s"
            + (" (already loaded in this session)" if r.get("cached") else ""),
        ]
    if r.get("downloaded"):
        lines.append(f"downloaded {len(r['downloaded'])} files")
    return "\n".join(lines)


class ModelManager(QDialog):
    """Pick, check and use a model. `ref()` is the model reference the choice stands for."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Model manager")
        #: replaceable by tests and scripts: a folder (None: cancelled)
        self.ask_folder: Callable[[str], str | None] = lambda title: (
            QFileDialog.getExistingDirectory(self, title) or None
        )
        self.job: Job | None = None
        self.last_result: dict[str, Any] | None = None
        self.last_error = ""
        #: the (model, device, dtype) the last passing check loaded: "Use" takes it without checking again
        self.passed: tuple[str, str, str] | None = None

        current = get(ctx.settings, "model")
        box = QGroupBox("Model", self)
        col = QVBoxLayout(box)
        self.choice = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        #: the tiny random model of every registered family
        self.tiny = QComboBox(box)
        for fam in FAMILIES.values():
            self.tiny.addItem(f"{fam.tiny_ref} ({fam.name})", fam.tiny_ref)
        self.folder = QLineEdit(box)
        self.folder.setPlaceholderText("a model folder (Browse…), or download one below")
        self.browse = QPushButton("Browse…", box)
        #: the family of the folder chosen, or why it has none
        self.family_label = QLabel(box)
        self.family_label.setWordWrap(True)
        for i, (key, text, tip) in enumerate(CHOICES):
            tip = tip.format(families=", ".join(FAMILIES))
            r = QRadioButton(text, box)
            r.setToolTip(tip)
            self.choice.addButton(r, i)
            self.radios[key] = r
            if key == "tiny":
                row = QHBoxLayout()
                row.addWidget(r)
                row.addWidget(self.tiny)
                row.addStretch(1)
                col.addLayout(row)
            else:
                col.addWidget(r)
            hint = QLabel(tip, box)
            hint.setWordWrap(True)
            hint.setStyleSheet(HINT_STYLE)
            col.addWidget(hint)
        row = QHBoxLayout()
        row.setContentsMargins(22, 0, 0, 0)
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        col.addLayout(row)
        col.addWidget(self.family_label)
        self.choose(*self._kind_of(current))

        self.download_box = QGroupBox("Download a model", self)
        row = QHBoxLayout(self.download_box)
        self.downloads = QComboBox(self.download_box)
        for d in DOWNLOADS.values():
            self.downloads.addItem(d.title, d.name)
        self.download_button = QPushButton("Download…", self.download_box)
        self.download_button.setToolTip(
            "fetch the model's files from the Hugging Face Hub into a folder, then check them"
        )
        self.download_size = QLabel(self.download_box)
        self.download_size.setStyleSheet("color: palette(mid);")
        row.addWidget(self.downloads)
        row.addWidget(self.download_size, 1)
        row.addWidget(self.download_button)
        self.download_box.setVisible(can_download())

        form = QFormLayout()
        self.device = QComboBox(self)
        self.dtype = QComboBox(self)
        for combo, items, value in (
            (self.device, DEVICES, get(ctx.settings, "device")),
            (self.dtype, DTYPES, get(ctx.settings, "dtype")),
        ):
            combo.addItems(items)
            if value not in items:  # e.g. "auto" from the settings dialog: keep it
                combo.addItem(value)
            combo.setCurrentText(value)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)

        self.check_button = QPushButton("Check", self)
        self.check_button.setToolTip("check the files, then load the model in the background and show its geometry")
        self.use_button = QPushButton("Use this model", self)
        self.use_button.setDefault(True)
        self.close_button = QPushButton("Close", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.check_button)
        buttons.addStretch(1)
        for b in (self.use_button, self.close_button):
            buttons.addWidget(b)

        self.progress = QProgressBar(self)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.output = QPlainTextEdit(self)
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("Check shows the model's files, layers, heads and load time here")
        self.output.setMinimumHeight(130)

        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(self.download_box)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.output, 1)
        layout.addLayout(buttons)

        self.browse.clicked.connect(self._browse)
        self.folder.textEdited.connect(lambda _: self.radios["folder"].setChecked(True))
        self.folder.textChanged.connect(lambda _: self._show_family())
        self.downloads.currentIndexChanged.connect(lambda _: self._show_download())
        self.choice.idToggled.connect(lambda *_: self._choice_changed())
        self.check_button.clicked.connect(lambda: self.check())
        self.download_button.clicked.connect(lambda: self.download())
        self.use_button.clicked.connect(self.use)
        self.close_button.clicked.connect(self.reject)
        for changed in (
            self.folder.textChanged,
            self.tiny.currentIndexChanged,
            self.device.currentTextChanged,
            self.dtype.currentTextChanged,
            self.choice.idToggled,
        ):  # another model, device or precision: the last check does not stand for it
            changed.connect(self._forget_check)
        self._choice_changed()
        self._show_family()
        self._show_download()
        self.resize(640, 600)

    # -- the choice ----------------------------------------------------------------------------
    def kind(self) -> str:
        return next(k for k, r in self.radios.items() if r.isChecked())

    def ref(self) -> str:
        """'bundled', a tiny model's reference or the folder."""
        k = self.kind()
        if k == "tiny":
            return self.tiny.currentData()
        return self.folder.text().strip() if k == "folder" else k

    @staticmethod
    def _kind_of(ref: str) -> tuple[str, str]:
        """(kind, value) of a model reference: ('bundled', ''), ('tiny', 'tiny:3') or ('folder', path)."""
        if ref == "bundled":
            return "bundled", ""
        try:
            return ("tiny", ref) if parse_ref(ref) is not None else ("folder", ref)
        except BackendError:  # "tiny:x": not a seed, so a folder's name
            return "folder", ref

    def chosen(self) -> tuple[str, str, str]:
        """(model reference, device, dtype) of the choice on screen."""
        return self.ref(), self.device.currentText(), self.dtype.currentText()

    def _forget_check(self, *_: Any) -> None:
        self.passed = None

    def choose(self, kind: str, value: str = "") -> None:
        """Select a kind of model, with its folder or (for a tiny model) its reference."""
        if kind == "folder" and value:
            self.folder.setText(value)
            self._show_family()  # the same folder chosen again may hold other files now
            self.passed = None
        if kind == "tiny" and value:
            if self.tiny.findData(value) < 0:  # another seed: offered as it is
                self.tiny.addItem(value, value)
            self.tiny.setCurrentIndex(self.tiny.findData(value))
        self.radios[kind].setChecked(True)

    def _choice_changed(self) -> None:
        kind = self.kind()
        self.tiny.setEnabled(kind == "tiny")
        for w in (self.folder, self.browse, self.family_label):
            w.setEnabled(kind == "folder")

    def _show_family(self) -> None:
        """The family of the folder in the line, told from its files (no torch, no loading)."""
        text = self.folder.text().strip()
        folder = Path(text).expanduser()
        label, tip = "", ""
        if not text:
            pass
        elif not folder.is_dir():
            label = "⚠ no such folder"
        else:
            try:
                label = f"✓ family: {folder_family(folder).name} (Check validates its files and loads it)"
            except BackendError as e:
                label, tip = "⚠ no model of a family this app knows: Check says what each one needs", str(e)
        self.family_label.setText(label)
        self.family_label.setToolTip(tip)
        self.family_label.setStyleSheet("margin-left: 22px;" + (" color: #b00020;" if label.startswith("⚠") else ""))

    def _show_download(self) -> None:
        d = DOWNLOADS[self.downloads.currentData()]
        self.download_size.setText(d.size)
        self.downloads.setToolTip(f"{d.title} (family {d.family}): {d.needs()}")

    def _browse(self) -> None:
        folder = self.ask_folder("Choose a model folder")
        if folder:
            self.choose("folder", folder)

    def show_error(self, message: str, headline: str = "") -> None:
        """The headline above, the whole message (what is missing, what to put there) below."""
        self.last_error = message
        self.status.setText("⚠ " + (headline or message))
        self.status.setStyleSheet("color: #b00020;")
        self.output.setPlainText(message)

    def show_status(self, message: str) -> None:
        self.status.setText(message)
        self.status.setStyleSheet("")

    def _busy(self, busy: bool) -> None:
        for b in (self.check_button, self.download_button, self.use_button):
            b.setEnabled(not busy)
        self.progress.setVisible(busy)
        if not busy:
            self.job = None

    def _ref_or_error(self) -> str | None:
        ref = self.ref()
        if not ref:
            self.show_error("choose the model folder first (Browse…), or download a model into one")
            return None
        return ref

    # -- jobs ------------------------------------------------------------------------------------
    def _submit(
        self, work, what: str, on_done: Callable[[dict], None], on_failed: Callable[[str], None] | None = None
    ) -> Job:
        self._busy(True)
        self.progress.setRange(0, 0)
        self.last_error = ""

        def progressed(p: Progress) -> None:
            self.progress.setRange(0, max(p.total, 1))
            self.progress.setValue(p.done)
            self.show_status(p.message)

        def done(result: dict) -> None:
            self._busy(False)
            self.last_result = result
            on_done(result)

        def failed(msg: str) -> None:
            self._busy(False)
            self.show_error(
                msg,
                f"{what} failed: "
                + ("no network" if msg.startswith("no network") else "what is missing and where it comes from:"),
            )
            if on_failed is not None:
                on_failed(msg)

        if self.ctx.jobs.busy():
            self.show_status("waiting for the running job to finish…")
        self.job = self.ctx.jobs.submit(work, what, done, on_progress=progressed, on_failed=failed)
        return self.job

    def check(
        self, load: bool = True, then: Callable[[], None] | None = None, failed: Callable[[str], None] | None = None
    ) -> Job | None:
        """Check the chosen model's files and (with `load`) load it, in a worker job; `then` is
        called when it passed, `failed` with the message when it did not."""
        ref = self._ref_or_error()
        if ref is None:
            return None
        device, dtype = self.device.currentText(), self.dtype.currentText()
        self.output.clear()
        self.passed = None

        def work():
            from mfv_desktop.backends.download import check_model

            return (yield from check_model(ref, device=device, dtype=dtype, load=load))

        def done(result: dict) -> None:
            self.show_status(f"{result['model_id']} is ready: “Use this model” makes every job run on it")
            self.output.setPlainText(describe_check(result))
            if load and self.chosen() == (ref, device, dtype):  # nothing changed while it ran
                self.passed = (ref, device, dtype)
                if then is not None:
                    then()

        return self._submit(work, f"check model {ref}", done, failed)

    def download(self, folder: str | None = None) -> Job | None:
        """Fetch the model chosen in the download list into a folder (asked for), then check it, in a
        worker job; the folder becomes the choice."""
        name = self.downloads.currentData()
        model = DOWNLOADS[name]
        folder = folder or self.ask_folder(f"Download {model.title} into a folder ({model.size})")
        if not folder:
            return None

        def work():
            from mfv_desktop.backends.download import download_model

            return (yield from download_model(name, folder))

        def done(result: dict) -> None:
            self.choose("folder", result["folder"])
            self.show_status(f"{model.title} is in place: Check loads it, “Use this model” makes jobs use it")
            self.output.setPlainText(describe_check(result))

        self.output.clear()
        return self._submit(work, f"download {model.title}", done)

    # -- using it -------------------------------------------------------------------------------
    def use(self) -> bool:
        """Use the choice: every job from now on runs on it. A model is used only once it loaded: a
        choice without a passing check is checked (files, then loading) first, and used when that
        passes; when it fails the dialog stays open and says why. True when used at once."""
        ref = self._ref_or_error()
        if ref is None:
            return False
        if self.kind() == "folder" and not Path(ref).expanduser().is_dir():
            self.show_error(
                f"model folder {ref} does not exist: choose a model folder (Browse…), or download a model into one"
            )
            return False
        if self.passed == self.chosen():
            self._use_checked()
            return True
        self.check(then=self._use_checked, failed=lambda msg: self._not_used(ref, msg))
        return False

    def _not_used(self, ref: str, message: str) -> None:
        self.status.setText(
            f"⚠ {ref} is not used (jobs still run on {self.ctx.model}): its check failed, "
            "below is what is missing and where it comes from"
        )

    def _use_checked(self) -> None:
        ref, device, dtype = self.chosen()
        self.ctx.use_model(ref, device, dtype)
        self.ctx.notify(f"jobs now run on {ref} · {device} · {dtype}")
        self.accept()


def install_menu(ctx: AppContext, window: QMainWindow) -> tuple[QMenu, QAction]:
    """A Model menu with the model manager, placed before Help once the window's menus exist; returns
    the menu and its action."""
    menu = QMenu("&Model", window)
    action = menu.addAction("Model manager…", lambda: ModelManager(ctx, window).exec())
    action.setObjectName("model.manager")

    def place() -> None:
        bar = window.menuBar()
        if menu.menuAction() in bar.actions():
            return
        help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        bar.insertMenu(help_menu, menu) if help_menu is not None else bar.addMenu(menu)

    if window.menuBar().actions():
        place()
    else:  # the window builds its menus after its panels
        QTimer.singleShot(0, place)
    return menu, action
