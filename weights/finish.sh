#!/bin/sh
# Wait for the chained training (PID $1) to end, then evaluate the shipped weights and write
# the results table into docs/model.md and weights/README.md.
cd "$(dirname "$0")/.."
while kill -0 "$1" 2>/dev/null; do sleep 20; done
${PY:-python} -m emcodec.training.report
