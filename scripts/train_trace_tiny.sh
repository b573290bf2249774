#!/usr/bin/env bash
# Train trace-tiny from nothing on CPU with the recipes in recipes/trace_tiny/ (~5 h on 2 cores).
# Stages: render grounding scenes -> dense vision pretraining -> localization with attention
# supervision (runs B, C, D, E) -> TRACE data -> CoR fine-tuning (two parts) -> evaluation and
# probes -> any camera: randomized worlds (stage 4, then stage 5 with more views) -> scores. Every stage runs a fixed number of steps with fixed seeds, so the weights depend on
# the recipes, not on the machine's speed. Outputs go to out/trace_tiny_build (the recipes' paths).
# Usage: bash scripts/train_trace_tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export OMP_NUM_THREADS=1
out=out/trace_tiny_build
g=$out/grounding
r=recipes/trace_tiny
mkdir -p "$g"

# Stage 0: scenes with per-pixel object ids (224x168), and held-out scenes with blank twins.
python -m experiments.grounding.render --out $g/train.npz --scenes 450 --layouts 4
python -m experiments.grounding.render --out $g/eval.npz --first-seed 100000 --scenes 80 \
    --layouts 1 --blank
# Stage 1: dense vision pretraining of the CLIP tower (class, colour, position, centroid).
python -m experiments.grounding.dense --config $r/1_dense.yaml
# TRACE data at the eval images' 4:3 aspect (the vocabulary corpus and the fine-tuning data).
python -m trace_train.data.generate --out $out/data --scenes 3000 --workers 2 --size 224 168 \
    --questions 4 --locate 2 --no-masks
# Stage 2: "Where is the X?" with attention supervision (runs B, C, D), then run E in the
# dataset's locate sentence ("The red mug is at (x, y).").
for run in 2b 2c 2d 2e; do
    python -m experiments.grounding.localize --config $r/${run}_localize.yaml
done
# Stage 3: TRACE fine-tuning, every answer with its Chain of Reasoning, projector frozen; then
# one more epoch of the same data at a lower learning rate.
python -m trace_train.finetune --config $r/3a_trace.yaml
python -m trace_train.finetune --config $r/3b_trace.yaml
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
# Stage 4: any camera. Randomized worlds (train split) mixed with default-view scenes; the
# whole model trains with bf16 autocast (the header of each recipe has its data commands).
gen() { python -m trace_train.data.generate --workers 2 --no-masks "$@"; }
gen --out $out/random_a --scenes 600 --randomize --max-side 320 --questions 6 --locate 1 --seed 2
gen --out $out/default_a --scenes 250 --size 224 168 --questions 6 --locate 1 --seed 3
python -m trace_train.finetune --config $r/4_any_view.yaml
# Stage 5: more randomized views, more "where is" questions.
gen --out $out/random_b --scenes 400 --randomize --max-side 320 --questions 6 --locate 1 --seed 4
gen --out $out/random_c --scenes 700 --randomize --max-side 320 --questions 4 --locate 3 --seed 6
gen --out $out/random_d --scenes 700 --randomize --max-side 320 --questions 4 --locate 3 --seed 7
gen --out $out/default_b --scenes 100 --size 224 168 --questions 6 --locate 1 --seed 5
python -m trace_train.finetune --config $r/5_more_views.yaml
# Scores of the any-view model (structured decoding, as the node runs it).
for split in sim_w2p_random sim_w2p sim_w2p_hard; do
    python -m trace_train.evaluate --data data/eval/$split --model $out/more_views/final \
        --out $out/eval5_$split --device cpu
done
