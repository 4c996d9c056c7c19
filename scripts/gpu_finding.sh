#!/usr/bin/env bash
# Issue #17's GPU session in one command, for a lent H100/H200 (about 9 minutes of wall time):
#
#   OUT=/path/for/results scripts/gpu_finding.sh        # BUDGET_S=540 by default; PYTHON=python3
#   OUT=... ALLOW_CPU=1 BUDGET_S=90 scripts/gpu_finding.sh  # rehearses the stages and budget where there is no GPU
#
# 1. checks that the data, the GPU and every import it needs are there, and stops at once if not;
# 2. benchmarks/train_gpu.py at the 2,000-wide sizes (frames/s and MFU in bf16 against the measured matmul peak);
# 3. scripts/gpu_features.py: the feature extractor's GPU path against torchaudio's kaldi.fbank;
# 4. the shared half's feature store and alignment (the documented small_cpu recipe's, 8 MLP rounds);
# 5. the finding (python -m training.ml finding): 3 seeds x teacher / SNN on labels / L2 mimic / soft mimic (and
#    the soft mimic on speed-perturbed frames too, at 512) at
#    the DNN widths 512 and 2000, the BiLSTM teacher, the BiLSTM-CTC peer and the SNN soft mimic of the BiLSTM,
#    most important first; each stage stops at the budget, and the last one reports whatever finished.
#
# Everything it writes (tables, JSON, logs) goes to $OUT; the runs themselves to $WORK (var/training/gpu_finding).
# Re-running it reuses every finished run (the finding's run directories are keyed by their configs).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder the results go to}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # scripts run by path import the project from this tree
BUDGET_S=${BUDGET_S:-540}
WORK=${WORK:-var/training/gpu_finding}
START=$(date +%s)
REPORT_S=45  # kept back for the last stage: the report of what finished

say() { echo "[$(($(date +%s) - START)) s] $*" | tee -a "$OUT/log.txt"; }
fail() { echo "gpu_finding: $*" >>"$OUT/log.txt"; echo "gpu_finding: $*" >&2; exit 2; }
left() { echo $((START + BUDGET_S - REPORT_S - $(date +%s))); }
# stage NAME FILE CMD...: run CMD with what is left of the budget, its output into $OUT/FILE; a stage cut short by
# the budget is reported and the script goes on (the finding's report still comes).
stage() {
  local name=$1 file=$2; shift 2
  local budget; budget=$(left)
  if [ "$budget" -lt 10 ]; then say "$name: skipped, the budget is spent"; return 0; fi
  say "$name: starting (up to ${budget} s)"
  local t0; t0=$(date +%s)
  local rc=0
  timeout --signal=INT --kill-after=10 "$budget" "$@" >"$OUT/$file" 2>>"$OUT/stderr.txt" || rc=$?
  if [ "$rc" -eq 0 ]; then
    say "$name: done in $(($(date +%s) - t0)) s -> $file"
  else
    say "$name: stopped after $(($(date +%s) - t0)) s (exit $rc$([ "$rc" -eq 124 ] && echo ', out of budget'); see stderr.txt)"
  fi
}

# 1. Everything it needs, before anything costly.
DATA=""
for d in "${SO762:-}" shared/data/speechocean762-train ../shared/data/speechocean762-train \
  /work/shared/data/speechocean762-train; do
  if [ -n "$d" ] && [ -f "$d/manifest.tsv" ]; then DATA=$(cd "$d" && pwd); break; fi
done
[ -n "$DATA" ] || fail "speechocean762-train not found: looked for shared/data/speechocean762-train/manifest.tsv \
(and ../shared, /work/shared); set SO762=DIR"
[ -f "$DATA/lexicon.txt" ] || fail "$DATA/lexicon.txt is missing (pronunciations of the words CMUdict lacks)"
[ "$(($(wc -l <"$DATA/manifest.tsv") - 1))" -eq 2500 ] || fail "$DATA/manifest.tsv does not list 2,500 utterances"
first_audio=$(awk -F'\t' 'NR == 2 { print $5 }' "$DATA/manifest.tsv")
[ -f "$DATA/$first_audio" ] || fail "the audio is missing: $DATA/$first_audio"
for f in benchmarks/train_gpu.py scripts/gpu_features.py training/ml/configs/small_cpu.json \
  training/ml/configs/finding_gpu.json training/ml/configs/blstm_gpu.json training/ml/configs/blstm_ctc_gpu.json; do
  [ -f "$f" ] || fail "$f is missing from the working tree"
done
command -v timeout >/dev/null || fail "coreutils timeout is missing"
ALLOW_CPU=${ALLOW_CPU:-0} "$PY" - <<'PYCHECK' 2>&1 | tee "$OUT/environment.txt" || fail "the Python environment cannot run this"
import importlib, os, sys
cpu_rehearsal = os.environ["ALLOW_CPU"] == "1"  # the stages' plumbing rehearsed where there is no GPU
missing = []
for name in ("torch", *(() if cpu_rehearsal else ("torchaudio",)), "numpy", "soundfile", "soxr", "tqdm", "cmudict", "training.ml.pipeline"):
    try:
        importlib.import_module(name)
    except Exception as exc:  # any failure to import is a reason to stop before training
        missing.append(f"{name} ({exc.__class__.__name__}: {exc})")
if missing:
    sys.exit("cannot import: " + "; ".join(missing))
import torch
if not torch.cuda.is_available() and not cpu_rehearsal:
    sys.exit("torch sees no CUDA device")
device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU (ALLOW_CPU=1 rehearsal)"
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {device}, {torch.get_num_threads()} CPU threads")
PYCHECK
say "checks passed; data: $DATA; work: $WORK"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >"$OUT/nvidia-smi.csv" 2>/dev/null || true

C=(--config training/ml/configs/small_cpu.json --config training/ml/configs/finding_gpu.json
  --set "work_dir=$WORK" --set "data.manifest=$DATA/manifest.tsv" --set "data.lexicon=$DATA/lexicon.txt")
F=(finding --blstm-config training/ml/configs/blstm_gpu.json --ctc-config training/ml/configs/blstm_ctc_gpu.json
  --eval-workers 6)

# 2-3. Throughput and features (each well under a minute).
stage "train_gpu.py, 2,000 wide" train_gpu.md "$PY" benchmarks/train_gpu.py --width 2000 --depth 3 --bottleneck 250
stage "features: ours on the GPU against kaldi.fbank" features_gpu.md \
  "$PY" scripts/gpu_features.py --manifest "$DATA/manifest.tsv" --clips 500 --json "$OUT/features_gpu.json"

# 4. Store and alignment (shared by every run below).
stage "prepare" prepare.json "$PY" -m training.ml prepare "${C[@]}"
stage "align (HMM EM, then 8 MLP rounds)" alignment.json "$PY" -m training.ml align "${C[@]}"

# 5. The finding, most important first; every later call reuses what an earlier one trained.
stage "finding at 512: teacher, SNN, L2 and soft mimics, 3 seeds" finding_512.md \
  "$PY" -m training.ml "${F[@]}" "${C[@]}" --rows teacher,snn,mimic_l2,mimic_soft --sizes 512 --seeds 3
stage "finding at 512: the soft mimic on speed-perturbed frames too, 3 seeds" finding_512_sp.md \
  "$PY" -m training.ml "${F[@]}" "${C[@]}" --rows teacher,snn,mimic_soft,mimic_soft_sp --sizes 512 --seeds 3
stage "BiLSTM teacher and BiLSTM-CTC peer, 1 seed" finding_blstm_ctc_1seed.md \
  "$PY" -m training.ml "${F[@]}" "${C[@]}" --rows blstm,ctc --seeds 1
stage "finding at 2000: teacher, SNN, L2 and soft mimics, 3 seeds" finding_2000.md \
  "$PY" -m training.ml "${F[@]}" "${C[@]}" --rows teacher,snn,mimic_l2,mimic_soft --sizes 2000 --seeds 3
stage "BiLSTM teacher, its soft mimic at 2000 and the CTC peer, 3 seeds" finding_blstm_ctc.md \
  "$PY" -m training.ml "${F[@]}" "${C[@]}" --rows blstm,ctc,blstm_mimic_soft --sizes 2000 --seeds 3

# The report: every row of the finding that finished, with the paired bootstrap of row means (test and hidden).
REPORT_S=0
for split in test hidden; do
  stage "report ($split)" "finding_$split.md" "$PY" -m training.ml "${F[@]}" "${C[@]}" --report-only \
    --rows teacher,snn,mimic_l2,mimic_soft,mimic_soft_sp,blstm,ctc,blstm_mimic_soft --sizes 512,2000 --seeds 3 \
    --split "$split" --json "$OUT/finding_$split.json"
done
for run in "$WORK"/runs/finding/*/; do  # each run's config, history and metrics (no checkpoints: too large)
  [ -d "$run" ] || continue
  mkdir -p "$OUT/runs/$(basename "$run")"
  cp "$run"/{config,history,metrics}.json "$OUT/runs/$(basename "$run")/" 2>/dev/null || true
done
cp "$WORK"/alignments/*/alignment.json "$OUT/alignment_history.json" 2>/dev/null || true
say "finished; results in $OUT"
