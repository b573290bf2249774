#!/usr/bin/env bash
# Train trace-tiny from nothing on CPU, as it was trained (docs/TRAINING.md): ~3 h on 2 cores.
# Stages: render grounding scenes -> dense vision pretraining -> localization with attention
# supervision (runs B, C, D, E) -> TRACE data -> CoR fine-tuning -> evaluation and probes.
# The stage budgets are wall-clock limits (--max-minutes), so step counts and weights depend on
# the machine; the numbers in models/trace-tiny/README.md are from one run of these commands.
# Usage: bash scripts/train_trace_tiny.sh [OUT]   (default out/trace_tiny_build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export OMP_NUM_THREADS=1
out=${1:-out/trace_tiny_build}
g=$out/grounding
mkdir -p "$g"

# Stage 0: scenes with per-pixel object ids (224x168), and held-out scenes with blank twins.
python -m trace_train.grounding.render --out $g/train.npz --scenes 450 --layouts 4
python -m trace_train.grounding.render --out $g/eval.npz --first-seed 100000 --scenes 80 \
    --layouts 1 --blank
# Stage 1: dense vision pretraining of the CLIP tower (class, colour, position, centroid).
python -m trace_train.grounding.dense --train $g/train.npz --eval $g/eval.npz \
    --out $g/dense --steps 500 --batch 32
# TRACE data at the eval images' 4:3 aspect (the vocabulary corpus and the fine-tuning data).
python -m trace_train.data.generate --out $out/data --scenes 3000 --workers 2 --size 224 168 \
    --questions 4 --locate 2 --no-masks
# Stage 2: "Where is the X?" with attention supervision, in three budgets (runs B, C, D).
python -m trace_train.grounding.localize --train $g/train.npz --vision $g/dense/vision_tower \
    --out $g/loc_b --steps 800 --batch 16 --attn-sup 1 --max-minutes 11
python -m trace_train.grounding.localize --train $g/train.npz --init $g/loc_b \
    --out $g/loc_c --steps 800 --batch 16 --attn-sup 1 --max-minutes 9
python -m trace_train.grounding.localize --train $g/train.npz --eval $g/eval.npz \
    --init $g/loc_c --vocab-corpus $out/data/llava_cor.json $out/data/llava_plain.json \
    --vocab-size 1024 --attn-sup 1 --out $g/loc_d --steps 1000 --batch 16 --max-minutes 34
# Run E: the readout again, in the dataset's locate sentence ("The red mug is at (x, y).").
python -m trace_train.grounding.localize --train $g/train.npz --eval $g/eval.npz \
    --init $g/loc_d --attn-sup 1 --answer-style trace --out $g/loc_e --steps 700 --batch 16 \
    --max-minutes 25
# Stage 3: TRACE fine-tuning, every answer with its Chain of Reasoning, projector frozen.
python -m trace_train.finetune --model $g/loc_e --data $out/data --out $out/ft --method full \
    --learning-rate 5e-4 --batch-size 8 --epochs 0.8 --cor-fraction 1 --threads 1 \
    --freeze-projector --logging-steps 20 --save-steps 100000 --max-minutes 30
# Stage 3, second part: one more epoch of the same data at lr 3e-4 (a fresh cosine schedule).
python -m trace_train.finetune --model $out/ft/final --data $out/data --out $out/ft2 \
    --method full --learning-rate 3e-4 --batch-size 8 --epochs 1.0 --cor-fraction 1 \
    --threads 1 --freeze-projector --logging-steps 50 --save-steps 100000 --max-minutes 40
# Scores: Where2Place-style accuracy, and whether the answers use the image.
for split in sim_w2p sim_w2p_hard; do
    python -m trace_train.evaluate --data data/eval/$split --model $out/ft2/final \
        --out $out/eval_$split --device cpu --max-new-tokens 320
done
python -m trace_train.evaluate --data data/eval/sim_w2p --model $out/ft2/final \
    --out $out/eval_sim_w2p_shuffled --device cpu --max-new-tokens 320 --images shuffled
for part in reference points; do
    python -m trace_train.probe --model $out/ft2/final --data data/eval/sim_w2p --part $part \
        --out $out/probe_$part.json
done
