# Two commands on a fresh machine: `make demo` and `make test`; both set everything up.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP   = $(VENV)/.installed

.PHONY: install demo test bench weights prior clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[decode,bench,test,formats,dask,zarr,napari]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/emcodec demo --out emcodec-demo --force

test: $(STAMP)
	$(BIN)/python -m pytest tests

bench: $(STAMP)
	$(BIN)/python benchmarks/encoder_speed.py

# Retrain the shipped TCS-DL weights from the configs recorded in weights/manifest.json
# (hours on a CPU, minutes on a GPU).
weights: $(STAMP)
	$(BIN)/python -m emcodec.training.reproduce --export weights

# Retrain the movie decoder's learned prior (weights/refine-v1.pt, weights/prior.json): fit pairs
# from 200 simulator movies (~20 min), then two CPU sittings resumable from
# weights/checkpoints/refine-v1.pt (see weights/prior.json for the recorded ones).
prior: $(STAMP)
	mkdir -p build
	$(BIN)/python -m emcodec.training.prior make-data --out build/prior-pairs.npz --movies 200
	$(BIN)/python -m emcodec.training.prior train --data build/prior-pairs.npz --checkpoint build/refine-v1.pt --minutes 15
	$(BIN)/python -m emcodec.training.prior train --data build/prior-pairs.npz --checkpoint build/refine-v1.pt --minutes 20 --resume --lr 5e-4
	$(BIN)/python -m emcodec.training.prior export --data build/prior-pairs.npz --checkpoint build/refine-v1.pt --out weights

clean:
	rm -rf $(VENV) emcodec-demo .pytest_cache .hypothesis
