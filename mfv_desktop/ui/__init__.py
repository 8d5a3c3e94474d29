"""The desktop app (PySide6): `MainWindow(data_dir=...)` builds the whole window in-process."""


def __getattr__(name: str):
    if name == "MainWindow":
        from mfv_desktop.ui.shell.main_window import MainWindow

        return MainWindow
    raise AttributeError(name)
