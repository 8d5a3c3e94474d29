#!/usr/bin/env bash
# The rules of the house that tools enforce (configured in pyproject.toml), run after the tests by the
# README's test command and by CI: import contracts (Qt only in ui, no torch in store/scenes/tasks/specs,
# ui not on backends/fv), ruff (lint and format) and mypy (strict on the torch-free core).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHONPATH=. .venv/bin/lint-imports
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
