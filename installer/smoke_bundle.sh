#!/usr/bin/env bash
# Smoke test of the PyInstaller bundle: build it, start the app offscreen on a temporary data folder
# (timed), run a small AIE job on the bundled model with the bundle's own command line, and check
# that the run and its results are in the store. Prints the bundle's size and start time.
# Slow (the build collects torch): run it outside CI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="${MFV_DIST:-$root/dist}"
[ "${SKIP_BUILD:-0}" = 1 ] || bash "$root/installer/build_bundle.sh"
exe="$dist/mfv_desktop/mfv_desktop"
[ -x "$exe" ] || { echo "no bundle at $exe" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export QT_QPA_PLATFORM=offscreen MFV_LOG_DIR="$tmp/logs" HF_HUB_OFFLINE=1
t0=$(python3 -c 'import time; print(time.time())')
shown=$("$exe" --data-dir "$tmp/data" --settings "$tmp/settings.ini" --quit-after-show | awk '/^shown/ {print $2}')
start=$(python3 -c "print(round($shown - $t0, 2))")
"$exe" mfv -q --store "$tmp/data" generate --n 8 --seed 1 --dataset smoke >/dev/null
"$exe" mfv -q --store "$tmp/data" aie --scenes dataset:smoke --relations above --n-prompts 4 >/dev/null
python3 - "$tmp/data/store.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
runs = db.execute("select kind, status from runs order by id").fetchall()
aie = db.execute("select relation, n_layers, n_heads from aie_results").fetchall()
assert runs == [("generate", "done"), ("aie", "done")], runs
assert aie == [("above", 6, 8)], aie
print("store: runs", runs, "aie", aie)
PY
size=$(du -sh "$dist/mfv_desktop" | cut -f1)
echo "smoke test passed: bundle $size, window shown ${start} s after launch"
