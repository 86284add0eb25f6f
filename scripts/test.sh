#!/usr/bin/env bash
# Run the whole test suite: unit tests (tests/) and every notebook (nbval, quick profile).
# Installs into .venv first if it is missing. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TGDMAT_VENV:-.venv}
if ! "$VENV/bin/python" -c "import tgdmat, pytest, nbval, torch_geometric" 2>/dev/null; then
  bash scripts/install.sh
fi
export TGDMAT_PROFILE=${TGDMAT_PROFILE:-quick} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
exec "$VENV/bin/python" -m pytest -q tests --nbval-lax notebooks "$@"
