"""The bundle's one executable: the desktop app, or with `mfv` as the first argument the command
line (`mfv_desktop mfv --store DIR aie ...`), so a bundle can run every job headless too."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if len(sys.argv) > 1 and sys.argv[1] == "mfv":
        from mfv_desktop.cli import main as cli

        sys.exit(cli(sys.argv[2:]))
    from mfv_desktop.ui.app import main as app

    sys.exit(app(sys.argv[1:]))
