"""Encoder CPU per frame against JPEG on a longer movie of the built-in sample's scene.

The built-in sample has 40 frames, so the setup that `compress()` does once per file
(parsing the TIFF, fitting the detector noise, making the B masks: about 1 ms) is a fifth
of its CPU per frame. This runs the same benchmark engine on a 400-frame movie simulated
like the sample (nanoparticles, dose 30, 256x256; the same scene generator and seed, so the
same statistics), where that setup is spread over ten times the frames. JPEG is matched
to each .tcs file's bytes as in every table; no decoder is run.

    python benchmarks/encoder_cost_long.py                       # 400 frames, --quantize off,auto
    python benchmarks/encoder_cost_long.py --frames 1000 --vs jpeg,av1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--vs", default="jpeg")
    ap.add_argument("--quantize", default="off,auto")
    args = ap.parse_args()

    from emcodec.simulate import SAMPLE_SEED, simulate_movie
    from emcodec.stacks import create_stack

    clean, noisy = simulate_movie(args.frames, 256, 256, seed=SAMPLE_SEED, dose=30.0, kind="nanoparticles")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, data in (("movie.tif", noisy), ("clean.tif", clean)):
            with create_stack(tmp / name, height=256, width=256, dtype=data.dtype, n_frames=len(data),
                              pixel_size=None) as out:
                out.write(data)
        subprocess.run([sys.executable, "-m", "emcodec", "benchmark", str(tmp / "movie.tif"), "--reference",
                        str(tmp / "clean.tif"), "--vs", args.vs, "--method", "", "--quantize", args.quantize,
                        "-q", "--json", str(tmp / "out.json")], check=True, stdout=subprocess.DEVNULL)
        report = json.loads((tmp / "out.json").read_text())
    cost = report["encoder_cost"]
    names = args.vs.split(",")
    print(f"{args.frames} frames of 256x256 uint16 (the sample's scene and dose); {cost['unit']}\n")
    print("| B | --quantize | .tcs bytes | emcodec ms/frame | " + " | ".join(f"{n} ms/frame (x emcodec)" for n in names)
          + " |\n|" + "---|" * (4 + len(names)))
    sizes = {(r["B"], str(r["quantize"])): r["emcodec"]["bytes"] for r in report["results"]}
    for row in cost["per_B"]:
        cells = [f"{1e3 * row['baselines'][n]['cpu_s_per_frame']:.3f} ({row['baselines'][n]['ratio_to_emcodec']:.2f}x)"
                 if n in row["baselines"] else "-" for n in names]
        print(f"| {row['B']} | {row['quantize']} | {sizes[(row['B'], str(row['quantize']))]} | "
              f"{1e3 * row['emcodec']:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
