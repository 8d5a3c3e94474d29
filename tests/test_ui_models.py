"""The model manager, driven through its buttons (offscreen): checking a folder that misses files
names them; checking the bundled model shows its geometry; "Use this model" saves the choice;
downloading without a network says what to do instead."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from mfv_desktop.ui.settings import get

pytestmark = pytest.mark.usefixtures("qapp")


def manager(qtbot, window):
    from mfv_desktop.ui.models import ModelManager

    d = ModelManager(window)
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


def test_use_this_model_saves_the_settings_and_updates_the_status_bar(qtbot, window, tmp_path):
    d = manager(qtbot, window)
    d.choose("folder", str(tmp_path / "missing"))
    press(qtbot, d.use_button)  # a folder that is not there is refused
    assert "does not exist" in d.last_error and get(window.settings, "model") == "bundled"

    d.radios["tiny"].click()
    d.dtype.setCurrentText("bf16")
    press(qtbot, d.use_button)
    assert d.result() == d.DialogCode.Accepted and not d.isVisible()
    assert (get(window.settings, "model"), get(window.settings, "device"), get(window.settings, "dtype")) == \
        ("tiny", "cpu", "bf16")
    assert window.model_kw() == {"model": "tiny", "device": "cpu", "dtype": "bf16"}
    assert window.model_label.text() == "model: tiny · cpu · bf16"

    folder = tmp_path / "of4b"
    folder.mkdir()
    again = manager(qtbot, window)  # opens on what is in use
    assert again.ref() == "tiny" and again.dtype.currentText() == "bf16"
    again.choose("folder", str(folder))
    press(qtbot, again.use_button)
    assert get(window.settings, "model") == str(folder) and str(folder) in window.model_label.text()
    assert manager(qtbot, window).ref() == str(folder)


def test_download_without_a_network_says_to_copy_the_files(qtbot, window, tmp_path, monkeypatch):
    from mfv_desktop.ui.models import can_download

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
