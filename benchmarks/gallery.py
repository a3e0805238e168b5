"""The README's gallery: one sample grid per model family, trained on the built-in digits with fixed seeds.

Trains three small models through the command line, one after another on one CPU thread each, then draws
36 samples of each with `dgm sample` into docs/gallery/NAME.png. Prints every command with the CPU seconds
(user + system) of its process, and the total.

    python benchmarks/gallery.py                                  # about 5 CPU minutes
    python benchmarks/gallery.py --runs benchmarks/runs/gallery   # keep the runs (default: a temporary folder)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (family, picture name, `dgm train` arguments): step counts chosen so that the digits are recognisable
GALLERY = (
    ("autoregressive", "gated-pixelcnn", ["gated-pixelcnn", "--data", "digits", "--binarize", "--steps", "1000"]),
    ("latent-variable", "vae", ["vae", "--data", "digits", "--binarize", "--steps", "2000"]),
    ("adversarial", "gan", ["gan", "--data", "digits", "--steps", "2000"]),
)
SEED = 0
N = 36


def _path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter commands), else absolute."""
    rel = os.path.relpath(path.resolve())
    return str(path.resolve()) if rel.startswith("..") else rel


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _step(args: list, env: dict) -> dict:
    """Run `python -m dgm ARGS` to the end; its command, CPU and wall seconds."""
    shown = "python -m dgm " + shlex.join(args)
    print(shown, flush=True)
    cpu, wall = _cpu_seconds(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "dgm", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    step = {"command": shown, "cpu_seconds": round(_cpu_seconds() - cpu, 1),
            "wall_seconds": round(time.perf_counter() - wall, 1)}
    print(f"  {step['cpu_seconds']:.1f} CPU s ({step['wall_seconds']:.1f} s wall)", flush=True)
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="keep the three runs in this folder "
                        "(default: a temporary one, removed at the end)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery", help="folder for the PNG files")
    parser.add_argument("--json", type=Path, help="also write the commands and their CPU seconds here")
    args = parser.parse_args(argv)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if (ROOT / "src" / "dgm").is_dir():  # this checkout's dgm, installed or not
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dgm-gallery-") as tmp:
        runs = args.runs or Path(tmp)
        for _, name, _ in GALLERY:
            if (runs / name / "config.json").exists():
                parser.error(f"{runs / name} already holds a run; remove it or give another --runs")
        steps = []
        for family, name, train in GALLERY:
            run = runs / name
            steps.append({"family": family, **_step(["train", *train, "--seed", str(SEED), "--out", _path(run),
                                                     "--no-progress"], env)})
            steps.append({"family": family, **_step(["sample", _path(run), "-n", str(N), "--seed", str(SEED),
                                                     "--out", _path(args.out / f"{name}.png")], env)})
    total = sum(s["cpu_seconds"] for s in steps)
    print(f"total: {total:.1f} CPU s; pictures in {_path(args.out)}")
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "cpu_seconds": round(total, 1)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
