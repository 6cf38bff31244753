#!/bin/sh
# After B=10 (weights/train_all.sh's first step), fine-tune B=20 and B=30 side by side from
# the B=10 weights, one CPU thread each, until DEADLINE (epoch seconds). This is how the
# shipped B=20 and B=30 weights were made on a 2-core machine; the exact configs (steps,
# minutes) are recorded in weights/manifest.json.
set -e
cd "$(dirname "$0")/.."
PY=${PY:-python}
DEADLINE=${DEADLINE:?set DEADLINE (epoch seconds)}
while [ ! -f checkpoints/b10/final.pt ] || pgrep -f "emcodec.training --B 10 " >/dev/null; do sleep 15; done
MINUTES=$($PY -c "import time; print(round(($DEADLINE - time.time() - 120) / 60, 1))")
for B in 20 30; do
    STEPS=$($PY -c "import json; s = json.load(open('checkpoints/b10/summary.json'))['seconds_per_step']; print(max(50, int($MINUTES * 60 / (s * $B / 10))))")
    echo "B=$B: $MINUTES minutes, $STEPS steps"
    $PY -m emcodec.training --B $B --width 32 --seed $B --steps $STEPS --minutes $MINUTES --lr 5e-4 \
        --warmup 50 --init checkpoints/b10/final.pt --out checkpoints/b$B --export weights \
        > checkpoints/train-b$B.log 2>&1 &
done
wait
echo "all done"
