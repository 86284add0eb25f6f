#!/usr/bin/env bash
# Install (if needed) and build the Jupyter Book on the quick profile: every notebook is executed.
# TGDMAT_PROFILE=paper bash scripts/book.sh builds with paper-size settings (needs a GPU).
# The HTML lands in _build/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TGDMAT_VENV:-.venv}
if ! "$VENV/bin/python" -c "import tgdmat, jupyter_book, torch_geometric" 2>/dev/null; then
  bash scripts/install.sh
fi
# (no MPLBACKEND here: notebooks must use the inline backend so that figures reach the book)
unset MPLBACKEND
export TGDMAT_PROFILE=${TGDMAT_PROFILE:-quick} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
start=$(date +%s)
cfg=$("$VENV/bin/python" scripts/book_config.py _build/_config.build.yml)
"$VENV/bin/jupyter-book" build --all -W --keep-going --config "$cfg" .
echo "built in $(( $(date +%s) - start )) s"
echo "book: $(pwd)/_build/html/index.html"
