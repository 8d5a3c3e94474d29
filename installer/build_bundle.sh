#!/usr/bin/env bash
# A one-folder PyInstaller bundle of mfv_desktop: dist/mfv_desktop/mfv_desktop (Linux; see README
# "Building the bundle" for Windows and macOS). Uses the project's .venv (installer/setup.sh makes it,
# with open_flamingo installed --no-deps) and adds PyInstaller to it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MFV_VENV:-$root/.venv}"
[ -x "$venv/bin/python" ] || bash "$root/installer/setup.sh"
"$venv/bin/python" -m pip install --disable-pip-version-check -q -c "$root/installer/constraints.txt" \
  pyinstaller pyinstaller-hooks-contrib
cd "$root"
"$venv/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "${MFV_DIST:-$root/dist}" --workpath "${MFV_BUILD:-$root/build/pyinstaller}" \
  installer/pyinstaller/mfv_desktop.spec
echo "bundle: ${MFV_DIST:-$root/dist}/mfv_desktop" >&2
