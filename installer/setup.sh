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
"${pip[@]}" "${c[@]}" -e "$root[test]"
# last, so that pip never checks open_flamingo's stale pins against what is installed
"${pip[@]}" --no-deps "${c[@]}" open_flamingo
echo "mfv_desktop is set up in $venv" >&2
