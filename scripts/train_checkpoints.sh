#!/usr/bin/env bash
# Train every checkpoint committed in results/checkpoints/ with the command that made it, then copy
# the chosen weights (best.pt: lowest held-out loss) and the run's log and config into results/.
#
#   bash scripts/train_checkpoints.sh NAME [NAME ...]   # e.g. perov_5_csp_text_facts
#   bash scripts/train_checkpoints.sh list              # the names and their commands
#
# Run it from the repository root of a clean checkout (no uncommitted changes): every checkpoint
# records the commit it was trained from, and "+dirty" means a reader cannot rebuild it. Times are
# for one core of this project's 2-core CPU machine. A run that is stopped resumes from its last.pt
# when the same command is given again. After copying, re-make the results that read the
# checkpoint (scripts/regenerate_results.sh names them; their files record the checkpoint's sha256).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONHASHSEED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PY:-python}
RUNS=${RUNS:-runs/checkpoints}
DEST=${DEST:-.}  # where results/ receives the copies (another checkout keeps this one clean for the next run)

# Perov-5 CSP, the 800-epoch short-prompt models (≈ 60 min each)
LONG="--dataset perov_5 --task csp --prompt short --epochs 800 --batch-size 256 --lr 2e-3 --ema-decay 0.999 --warmup-steps 200 --eval-every 20"
# Perov-5 long-prompt models, one 300-epoch budget (≈ 15–25 min each, plus encoding the descriptions once)
LONGP="--dataset perov_5 --task csp --prompt long --conditioning text --epochs 300 --eval-every 20"
# Perov-5 generation (≈ 70 min each)
GEN="--dataset perov_5 --task gen --conditioning text+facts --epochs 1000 --batch-size 256 --lr 2e-3 --ema-decay 0.999 --warmup-steps 200 --eval-every 25"
# Carbon-24 CSP, the 1,500-epoch short-prompt models (≈ 80 min each)
CARBON="--dataset carbon_24 --task csp --conditioning text+facts --epochs 1500 --batch-size 256 --lr 2e-3 --ema-decay 0.999 --warmup-steps 200 --eval-every 25"
# Carbon-24 long-prompt models, one 800-epoch budget
CARBONP="--dataset carbon_24 --task csp --prompt long --conditioning text --epochs 800 --eval-every 20"

command_for() {
  case "$1" in
    perov_5_csp_quick)               echo "--dataset perov_5 --task csp --conditioning text --epochs 12 --eval-every 4" ;;
    perov_5_csp_text)                echo "--dataset perov_5 --task csp --conditioning text --epochs 40 --eval-every 4" ;;
    perov_5_csp_text_facts)          echo "--dataset perov_5 --task csp --conditioning text+facts --epochs 40 --eval-every 4" ;;
    perov_5_csp_long_text)           echo "$LONG --conditioning text" ;;
    perov_5_csp_long_text_facts)     echo "$LONG --conditioning text+facts" ;;
    perov_5_csp_text_facts_dropout)  echo "$LONG --conditioning text+facts --attribute-dropout 0.2 --paraphrase --prompt-variants 8" ;;
    perov_5_csp_text_facts_dropout10) echo "$LONG --conditioning text+facts --attribute-dropout 0.1 --paraphrase --prompt-variants 8" ;;
    perov_5_csp_text_facts_dropout05) echo "$LONG --conditioning text+facts --attribute-dropout 0.05 --paraphrase --prompt-variants 8" ;;
    perov_5_csp_text_facts_no_energy) echo "$LONG --conditioning text+facts --never-stated heat_ref" ;;
    perov_5_csp_long_prompt_pooled)  echo "$LONGP --grounding none" ;;
    perov_5_csp_long_prompt_sites)   echo "$LONGP --grounding sites" ;;
    perov_5_csp_long_prompt_grounded) echo "$LONGP --grounding sites+attention" ;;
    perov_5_gen_text_facts)          echo "$GEN" ;;
    # the same generation recipe reading the Robocrystallographer description (pooled, facts parsed from it)
    perov_5_gen_long_text_facts)     echo "$GEN --prompt long" ;;
    # learning-curve points: the same recipe on the first half / quarter of the training crystals (chapter 6, section 7)
    perov_5_gen_text_facts_half)     echo "$GEN --max-train 1704" ;;
    perov_5_gen_text_facts_quarter)  echo "$GEN --max-train 852" ;;
    carbon_24_csp_text_facts)        echo "$CARBON" ;;
    # the Carbon-24 model that never learns one fact (what stating it is worth; same budget, ≈ 80 min each)
    carbon_24_csp_text_facts_no_energy) echo "$CARBON --never-stated energy_per_atom" ;;
    carbon_24_csp_text_facts_no_space_group) echo "$CARBON --never-stated space_group" ;;
    carbon_24_csp_text_facts_dropout) echo "$CARBON --attribute-dropout 0.2 --paraphrase --prompt-variants 8" ;;
    carbon_24_csp_text_facts_dropout10) echo "$CARBON --attribute-dropout 0.1 --paraphrase --prompt-variants 8" ;;
    carbon_24_gen_text_facts)        echo "--dataset carbon_24 --task gen --conditioning text+facts --epochs 600 --eval-every 20" ;;
    # Carbon-24 long prompts, per-site facts (≈ 35 min plus encoding the descriptions once)
    carbon_24_csp_long_prompt_sites) echo "$CARBONP --grounding sites" ;;
    # … and with attention over the sentences (≈ 3 CPU-hours beside other jobs; trained in two sessions, resumed from last.pt)
    carbon_24_csp_long_prompt_grounded) echo "$CARBONP --grounding sites+attention" ;;
    *) return 1 ;;
  esac
}
# NAME_seedK: a replicate of NAME trained with --seed K on the same training crystals and held-out
# slice (--holdout-seed 0), to measure how far two training runs of one recipe differ.
seed_of() { case "$1" in *_seed[0-9]*) echo "${1##*_seed} --holdout-seed 0" ;; *) echo 0 ;; esac; }
base_of() { case "$1" in *_seed[0-9]*) echo "${1%_seed*}" ;; *) echo "$1" ;; esac; }
NAMES="perov_5_csp_quick perov_5_csp_text perov_5_csp_text_facts perov_5_csp_long_text perov_5_csp_long_text_facts
perov_5_csp_long_text_facts_seed1 perov_5_csp_long_text_facts_seed2
perov_5_csp_text_facts_dropout perov_5_csp_text_facts_dropout10 perov_5_csp_text_facts_dropout05
perov_5_csp_text_facts_dropout10_seed1 perov_5_csp_text_facts_dropout10_seed2 perov_5_csp_text_facts_no_energy perov_5_csp_long_prompt_pooled perov_5_csp_long_prompt_sites perov_5_csp_long_prompt_grounded
perov_5_csp_long_prompt_sites_seed1 perov_5_csp_long_prompt_grounded_seed1
perov_5_gen_text_facts perov_5_gen_text_facts_half perov_5_gen_text_facts_quarter perov_5_gen_long_text_facts carbon_24_csp_text_facts carbon_24_csp_text_facts_no_energy carbon_24_csp_text_facts_no_space_group carbon_24_csp_text_facts_dropout carbon_24_csp_text_facts_dropout10 carbon_24_gen_text_facts carbon_24_csp_long_prompt_sites carbon_24_csp_long_prompt_grounded"

if [ "${1:-list}" = list ]; then
  for n in $NAMES; do echo "$n: $PY -m tgdmat train $(command_for "$(base_of "$n")") --seed $(seed_of "$n") --threads 1 --out $RUNS/$n"; done
  exit 0
fi
for n in "$@"; do
  args=$(command_for "$(base_of "$n")") || { echo "train_checkpoints.sh: unknown checkpoint '$n' (see: bash scripts/train_checkpoints.sh list)" >&2; exit 2; }
  args="$args --seed $(seed_of "$n")"
  echo "+ $PY -m tgdmat train $args --threads 1 --out $RUNS/$n" >&2
  # shellcheck disable=SC2086
  $PY -m tgdmat train $args --threads 1 --out "$RUNS/$n"
  cp "$RUNS/$n/best.pt" "$DEST/results/checkpoints/$n.pt"
  cp "$RUNS/$n/log.csv" "$DEST/results/logs/$n.csv"
  cp "$RUNS/$n/config.json" "$DEST/results/logs/$n.config.json"
done
