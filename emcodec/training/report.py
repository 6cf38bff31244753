"""After training: evaluate each shipped B on held-out clips and write the results into the docs.

`python -m emcodec.training.report` writes weights/evaluation.json and replaces the
RESULTS_PLACEHOLDER line of docs/model.md and weights/README.md with a table (manifest facts
plus Ybar / GAP-TV / TCS-DL PSNR at doses 1, 20, 100 on held-out simulator clips coded with
the codec's masks at a non-default seed).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..model import manifest, weights_dir
from .evaluate import evaluate

DOSES = (1.0, 20.0, 100.0)
MASK_SEED = 987654321


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="python -m emcodec.training.report")
    p.add_argument("--no-docs", action="store_true", help="only print and write evaluation.json")
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    wd = weights_dir()
    entries = manifest(wd)
    results = {}
    for B in sorted(entries):
        rows, alpha = evaluate(B, None, clips=a.clips, size=a.size, doses=DOSES, mask_seed=MASK_SEED)
        results[B] = {"psnr_db": rows, "reprojection_step": round(alpha, 4)}
        print(B, json.dumps(results[B]), flush=True)
    (wd / "evaluation.json").write_text(json.dumps(
        {"clips_per_dose": a.clips, "size": a.size, "mask_seed": MASK_SEED, "simulator_seeds_from": 10**9 + 5000,
         "results": {str(b): r for b, r in results.items()}}, indent=2) + "\n")
    lines = ["| B | params | steps | minutes | where | val PSNR (dB) | re-projection a | dose | Ybar | GAP-TV | TCS-DL no re-proj. | TCS-DL |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for B, r in results.items():
        e = entries[B]
        for i, d in enumerate(DOSES):
            row = r["psnr_db"][d]
            head = (f"| {B} | {e['parameters']} | {e['steps_done']} | {e['duration_minutes']} | {e['where_trained']} | "
                    f"{e['final_val_psnr_db']} | {r['reprojection_step']} ") if i == 0 else "| | | | | | | "
            lines.append(head + f"| {d:g} | {row['ybar']} | {row['gap-tv']} | {row['tcsdl-no-reproject']} | {row['tcsdl']} |")
    table = "\n".join(lines) + (
        "\n\nPSNR: mean over 6 held-out simulator clips (128x128, seeds from 10^9+5000) and their frames,"
        " peak = the clean clip's max - min, in the normalised units the decoders work in;"
        f" masks from emcodec.masks at seed {MASK_SEED}. Produced by `python -m emcodec.training.report`."
        " 'val PSNR' is the training run's own validation set (8 clips 96x96, doses 1/20/100, random masks).\n")
    root = Path(__file__).resolve().parents[2]
    for doc in () if a.no_docs else (root / "docs" / "model.md", wd / "README.md"):
        if doc.exists() and "RESULTS_PLACEHOLDER" in doc.read_text():
            doc.write_text(doc.read_text().replace("RESULTS_PLACEHOLDER", table))
            print(f"wrote the table into {doc}")


if __name__ == "__main__":
    main()
