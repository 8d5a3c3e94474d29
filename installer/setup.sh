#!/usr/bin/env bash
# Sets up mfv_desktop in a virtual environment (.venv in the checkout, or $MFV_VENV).
# open_flamingo is installed with --no-deps: its metadata pins torch 2.0.1, which would replace
# the project's torch with a multi-GB download; its real needs are in pyproject.toml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MFV_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
c=(-c "$root/installer/constraints.txt")
"${pip[@]}" "${c[@]}" torch torchvision
# the app needs PySide6-Essentials only. A venv made before holds the full `pyside6` (Essentials + Addons),
# or 6.12.0 with add-ons (pyside6-pdf, pyside6-webengine); they all share the PySide6 folder: remove the
# whole family (once: none of these is installed afterwards) so that the pinned Essentials installs complete
# and no file of another version or of an unused add-on stays behind
if "$venv/bin/python" -m pip show -q pyside6 pyside6-addons pyside6-webengine pyside6-pdf >/dev/null 2>&1; then
  "$venv/bin/python" -m pip uninstall -y -q pyside6 pyside6-essentials pyside6-addons pyside6-pdf \
    pyside6-webengine shiboken6
fi
# cluster: Ray, for the Ray executor (optional for users; installed here so that its tests run)
"${pip[@]}" "${c[@]}" -e "$root[test,cluster]"
# last, so that pip never checks open_flamingo's stale pins against what is installed
"${pip[@]}" --no-deps "${c[@]}" open_flamingo
echo "mfv_desktop is set up in $venv" >&2
