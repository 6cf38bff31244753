#!/bin/sh
# Train the shipped TCS-DL weights on the CPU, one after another: B=10 from scratch, then
# B=20 fine-tuned from B=10 and B=30 from B=20 (only the first layer depends on B).
# DEADLINE (epoch seconds) splits the time left after B=10 between the two fine-tunes;
# each run records its exact config (steps included) in weights/manifest.json.
set -e
cd "$(dirname "$0")/.."
PY=${PY:-python}
DEADLINE=${DEADLINE:-$(( $(date +%s) + 7200 ))}
$PY -m emcodec.training --B 10 --width 32 --seed 10 --steps 3800 --minutes ${B10_MINUTES:-66} --resume \
    --out checkpoints/b10 --export weights
for B in 20 30; do
    PREV=$(( B - 10 ))
    # minutes and steps for this fine-tune: the remaining time split over the runs left,
    # steps from the measured B=10 step time scaled by B
    set -- $($PY -c "
import json, time
left = $DEADLINE - time.time() - 90
runs = 2 if $B == 20 else 1
share = (0.5 if runs == 2 else 1.0) * left
sps = json.load(open('checkpoints/b10/summary.json'))['seconds_per_step'] * $B / 10 * 1.08
print(round(share / 60, 1), max(50, int(share / sps)))
")
    echo "B=$B: $1 minutes, $2 steps"
    $PY -m emcodec.training --B $B --width 32 --seed $B --steps $2 --minutes $1 --lr 5e-4 \
        --warmup 50 --init checkpoints/b$PREV/final.pt --out checkpoints/b$B --export weights
done
echo "all done"
