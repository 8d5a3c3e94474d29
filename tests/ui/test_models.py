"""The model manager, driven through its buttons (offscreen): checking a folder that misses files
names them; checking the bundled model shows its geometry; "Use this model" saves the choice once it loaded
(a choice whose check fails is not used, and the dialog says why);
a folder's family is shown as it is chosen; every registered family's tiny model is offered; a
listed model downloads (from a fake Hub) into the folder chosen; without a network it says what to
do instead."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from mfv_desktop.specs import ModelRef
from mfv_desktop.ui.shell.settings import get

pytestmark = pytest.mark.usefixtures("qapp")


def manager(qtbot, window):
    from mfv_desktop.ui.shell.models import ModelManager

    d = ModelManager(window.ctx, window)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    return d


def press(qtbot, button):
    assert button.isVisible() and button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait(qtbot, d, timeout=60000):
    qtbot.waitUntil(lambda: d.job is None and d.check_button.isEnabled(), timeout=timeout)


def test_the_model_menu_sits_before_help_and_opens_on_the_current_model(qtbot, window):
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles.index("File") < titles.index("Model") == titles.index("Help") - 1
    d = manager(qtbot, window)
    assert d.ref() == "bundled" and d.device.currentText() == "cpu" and d.dtype.currentText() == "fp32"
    assert not d.folder.isEnabled()


def test_check_names_what_a_folder_misses(qtbot, window, tmp_path):
    d = manager(qtbot, window)
    folder = tmp_path / "of4b"
    folder.mkdir()
    d.ask_folder = lambda title: str(folder)
    d.radios["folder"].click()
    press(qtbot, d.browse)
    assert d.ref() == str(folder) and d.folder.isEnabled()
    press(qtbot, d.check_button)
    wait(qtbot, d)
    assert "checkpoint.pt" in d.last_error and str(folder) in d.last_error
    assert "failed" in d.status.text() and "checkpoint.pt" in d.output.toPlainText()
    assert "RedPajama-INCITE-Instruct-3B-v1" in d.output.toPlainText()

    # the checkpoint and the language model are there, the vision weights are not
    (folder / "checkpoint.pt").write_bytes(b"")
    lm = folder / "RedPajama-INCITE-Instruct-3B-v1"
    lm.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (lm / name).write_text("{}")
    press(qtbot, d.check_button)
    wait(qtbot, d)
    assert "open_clip_pytorch_model.bin" in d.last_error and "no open_clip vision weights" in d.last_error
    assert get(window.settings, "model") == "bundled"  # checking changes nothing


def test_check_the_bundled_model_shows_its_geometry(qtbot, window):
    d = manager(qtbot, window)
    press(qtbot, d.check_button)
    assert not d.check_button.isEnabled() and d.progress.isVisible()
    wait(qtbot, d)
    assert d.last_error == "", d.last_error
    text = d.output.toPlainText()
    assert "mfv-bundled-openflamingo" in text and "6 layers · 8 heads · d_head 16 · d_model 128" in text, text
    assert "loaded on cpu (fp32) in" in text
    g = d.last_result["geometry"]
    assert (g["n_layers"], g["n_heads"], g["d_head"], g["d_model"]) == (6, 8, 16, 128)
    assert not d.progress.isVisible()


def test_use_this_model_saves_the_settings_and_updates_the_status_bar(qtbot, window, tmp_path, tiny_folder):
    d = manager(qtbot, window)
    d.choose("folder", str(tmp_path / "missing"))
    press(qtbot, d.use_button)  # a folder that is not there is refused
    wait(qtbot, d)
    assert "does not exist" in d.last_error and get(window.settings, "model") == "bundled" and d.isVisible()

    d.radios["tiny"].click()
    d.dtype.setCurrentText("bf16")
    press(qtbot, d.use_button)  # checked (built and loaded) first, then used
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=120000)
    assert d.result() == d.DialogCode.Accepted
    assert (get(window.settings, "model"), get(window.settings, "device"), get(window.settings, "dtype")) == (
        "tiny",
        "cpu",
        "bf16",
    )
    assert window.model_ref() == ModelRef("tiny", "cpu", "bf16")
    assert window.status.model_label.text() == "model: tiny · cpu · bf16"

    again = manager(qtbot, window)  # opens on what is in use
    assert again.ref() == "tiny" and again.dtype.currentText() == "bf16"
    again.choose("folder", str(tiny_folder))
    again.dtype.setCurrentText("fp32")
    press(qtbot, again.check_button)
    wait(qtbot, again)
    assert again.last_error == "" and get(window.settings, "model") == "tiny"  # a check alone changes nothing
    press(qtbot, again.use_button)  # the passing check stands for this choice: used at once
    assert not again.isVisible() and again.result() == again.DialogCode.Accepted
    assert get(window.settings, "model") == str(tiny_folder) and str(tiny_folder) in window.status.model_label.text()
    assert manager(qtbot, window).ref() == str(tiny_folder)


def test_use_refuses_a_folder_whose_check_fails_and_says_why(qtbot, window, tmp_path):
    d = manager(qtbot, window)
    folder = tmp_path / "empty"
    folder.mkdir()
    d.choose("folder", str(folder))
    press(qtbot, d.use_button)
    wait(qtbot, d)
    # the model jobs run on is unchanged, the dialog stays open and says what is missing and why
    assert window.ctx.model == "bundled" and get(window.settings, "model") == "bundled"
    assert window.status.model_label.text() == "model: bundled · cpu · fp32"
    assert d.isVisible() and d.result() != d.DialogCode.Accepted
    assert "not used" in d.status.text() and "checkpoint.pt" in d.output.toPlainText()
    assert str(folder) in d.last_error


def test_a_passing_check_stands_only_for_the_choice_it_checked(qtbot, window, tiny_folder):
    d = manager(qtbot, window)
    d.choose("folder", str(tiny_folder))
    press(qtbot, d.check_button)
    wait(qtbot, d)
    assert d.last_error == ""
    d.device.setCurrentText("cuda")  # another device: the check no longer stands for it
    d.device.setCurrentText("cpu")
    jobs_before = len(window.jobs.jobs)
    press(qtbot, d.use_button)  # checked again before it is used
    assert len(window.jobs.jobs) == jobs_before + 1 and window.jobs.jobs[-1].what.startswith("check model")
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=120000)
    assert get(window.settings, "model") == str(tiny_folder)


def test_download_without_a_network_says_to_copy_the_files(qtbot, window, tmp_path, monkeypatch):
    from mfv_desktop.ui.shell.models import can_download

    if not can_download():
        pytest.skip("huggingface_hub is not installed: the download button is hidden")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    d = manager(qtbot, window)
    d.ask_folder = lambda title: str(tmp_path / "of4b")
    press(qtbot, d.download_button)
    wait(qtbot, d)
    assert "no network: copy the files into the folder instead; see README" in d.last_error
    assert "no network" in d.status.text() and window.jobs.jobs[-1].status == "failed"
    assert d.isVisible() and d.check_button.isEnabled()  # the dialog is still there to try again


def test_choosing_a_folder_shows_its_family(qtbot, window, tmp_path, add_family):
    add_family("othervl", "other_vl")
    d = manager(qtbot, window)
    folder = tmp_path / "m"
    folder.mkdir()
    d.ask_folder = lambda title: str(folder)
    d.radios["folder"].click()
    press(qtbot, d.browse)
    assert "no model of a family this app knows" in d.family_label.text()
    assert "it holds no model this app knows" in d.family_label.toolTip()  # what each family needs
    (folder / "config.json").write_text('{"model_type": "other_vl"}')
    press(qtbot, d.browse)  # chosen again: now it is a model of the registered family
    assert d.family_label.text().startswith("✓ family: othervl")

    of4b = tmp_path / "of4b"
    of4b.mkdir()
    (of4b / "checkpoint.pt").write_bytes(b"")
    d.folder.clear()
    qtbot.keyClicks(d.folder, str(of4b))  # typed: told as the line changes
    assert d.kind() == "folder" and d.family_label.text().startswith("✓ family: openflamingo")
    qtbot.keyClicks(d.folder, "x")
    assert d.family_label.text() == "⚠ no such folder"


def test_the_tiny_model_of_every_family_is_offered(qtbot, window, add_family):
    from mfv_desktop.backends.registry import FAMILIES

    add_family("othervl", "other_vl")
    d = manager(qtbot, window)
    assert [d.tiny.itemData(i) for i in range(d.tiny.count())] == [f.tiny_ref for f in FAMILIES.values()]
    assert "tiny-othervl" in [d.tiny.itemData(i) for i in range(d.tiny.count())] and not d.tiny.isEnabled()
    d.radios["tiny"].click()
    d.tiny.setCurrentIndex(d.tiny.findData("tiny-othervl"))
    press(qtbot, d.use_button)  # built, checked and loaded, then used
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=30000)
    assert get(window.settings, "model") == "tiny-othervl"
    again = manager(qtbot, window)  # opens on it
    assert again.kind() == "tiny" and again.ref() == "tiny-othervl" and again.tiny.isEnabled()
    window.settings.setValue("model", "tiny:3")  # another seed is kept as it is
    assert manager(qtbot, window).ref() == "tiny:3"


def test_download_a_listed_model_fetches_it_and_chooses_its_folder(qtbot, window, tmp_path, fake_hub, add_family):
    from mfv_desktop.backends.download import DOWNLOADS
    from mfv_desktop.ui.shell.models import can_download

    if not can_download():
        pytest.skip("huggingface_hub is not installed: downloads are hidden")
    model = DOWNLOADS["qwen3-vl-2b-instruct"]
    add_family(model.family, "qwen3_vl")
    hub = fake_hub(
        {
            model.sources[0].repo: [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "README.md",
                "preprocessor_config.json",
            ]
        },
        {"config.json": '{"model_type": "qwen3_vl"}'},
    )
    d = manager(qtbot, window)
    assert [d.downloads.itemText(i) for i in range(d.downloads.count())] == [m.title for m in DOWNLOADS.values()]
    d.downloads.setCurrentIndex(d.downloads.findData(model.name))
    assert d.download_size.text() == model.size
    folder = tmp_path / "qwen"
    d.ask_folder = lambda title: str(folder)
    press(qtbot, d.download_button)
    wait(qtbot, d)
    assert d.last_error == "" and window.jobs.jobs[-1].status == "done"
    assert len(hub.fetched) == 4 and (folder / "model.safetensors").is_file()
    assert d.ref() == str(folder) and d.family_label.text().startswith(f"✓ family: {model.family}")
    assert f"{model.title} is in place" in d.status.text() and "downloaded 4 files" in d.output.toPlainText()


def test_the_model_manager_lists_families_and_downloads_without_torch():
    import subprocess
    import sys

    code = (
        "import sys; from mfv_desktop.ui.shell.models import DOWNLOADS, FAMILIES, folder_family; "
        "print(len(DOWNLOADS), len(FAMILIES), 'torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[2] == "False" and int(r.stdout.split()[0]) == 3


def test_the_settings_dialog_offers_the_tiny_model_of_every_family(qtbot, window, add_family):
    from mfv_desktop.backends.registry import FAMILIES
    from mfv_desktop.ui.shell.settings import SettingsDialog

    add_family("othervl", "other_vl")
    d = SettingsDialog(window.settings, window.acts, window)
    qtbot.addWidget(d)
    items = [d.model.itemText(i) for i in range(d.model.count())]
    assert items == ["bundled", *(f.tiny_ref for f in FAMILIES.values())] and "tiny-othervl" in items
    assert "tiny-othervl" in d.model.toolTip() and "othervl" in d.model.toolTip().partition("folder")[2]
