"""InfoGAN and the semi-supervised GAN at fixed CPU budgets (issue 16): the measured part of both models.

Protocol (one CPU thread, seed 0, library defaults unless stated; process CPU seconds reported per part):
- (a) SSGAN (Salimans et al. 2016), feature matching for G, --arch mlp (D: LeakyReLU MLP, no norm), Adam 2e-4
  (0.5, 0.999), batch 64: digits with 10 labels per class (100 labelled of 1257 training images; --hidden 256
  --layers 2) and Fashion-MNIST with 100 per class (1000 of 55000; --hidden 512 --layers 3). Test accuracy of the
  classifier (argmax over the K real classes) on the whole test split (`dgm eval RUN --metric accuracy`).
  Baseline: the same classifier network (D's body + K-way head, same initialisation: the same seed builds the same
  model) trained with cross-entropy on the labelled images alone, same batch size, optimiser and number of steps,
  batches drawn with replacement from the same labelled subset.
- (b) InfoGAN (Chen et al. 2016) on digits, --cat-codes 10 --cont-codes 2 --info-weight 1, --arch dcgan --hidden 32
  (batch norm in G and D), Adam 1e-3 for G and 2e-4 for D and Q (the paper's), batch 64: the categorical code's accuracy on the test split against the true labels, with the best
  one-to-one map of codes to classes (scipy.optimize.linear_sum_assignment on the confusion matrix); the MI lower
  bound log K - CE at the end of training; and the code-variation figure (`dgm sample RUN --vary-code 0` and 1).
Budgets (STEPS below) are tiny next to the papers' (hundreds of epochs on a GPU).

    python benchmarks/infogan_ssgan.py            # all parts, results in benchmarks/results/infogan_ssgan/
    python benchmarks/infogan_ssgan.py --quick    # a smoke run of every part (a few steps)
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

import dgm  # noqa: E402
from dgm.cli import main  # noqa: E402
from dgm.data.batching import collate  # noqa: E402
from dgm.metrics import evaluate  # noqa: E402
from dgm.models.ssgan import labelled_subset  # noqa: E402
from dgm.objectives.semisupervised import supervised_loss  # noqa: E402
from dgm.runs import load_data  # noqa: E402
from dgm.training.engine import seed_everything  # noqa: E402
from dgm.models import build_model  # noqa: E402

OUT = ROOT / "results" / "infogan_ssgan"
RUNS = Path("/tmp/dgm-bench-infogan-ssgan")
SSGAN = {"digits": dict(labels=10, steps=3000, opts=["--hidden", "256", "--layers", "2"]),
         "fashion-mnist": dict(labels=100, steps=5000, opts=["--hidden", "512", "--layers", "3"])}
INFOGAN = dict(steps=5000, opts=["--arch", "dcgan", "--cat-codes", "10", "--cont-codes", "2", "--hidden", "32"])
COMMON = ["--arch", "mlp", "--batch-size", "64", "--seed", "0", "--no-progress", "--n-samples", "0",
          "--log-every", "100", "--ckpt-every", "100000", "--eval-every", "100000"]


def _train(model, data, out, steps, opts):
    if out.exists():
        shutil.rmtree(out)
    args = ["train", model, "--data", data, "--steps", str(steps), "--out", str(out), *COMMON, *opts]
    assert main(args) == 0, args
    print("dgm", " ".join(args), flush=True)


def supervised_baseline(run, steps):
    """The SSGAN run's classifier network, freshly built with the same seed, trained on its labelled subset alone."""
    cfg = dgm.runs.read_run_config(run)
    seed_everything(0)
    model = build_model("ssgan", cfg["model_config"])
    train = load_data(cfg["data"], "train")
    c = model.config
    subset = labelled_subset(train.labels, c.labels_per_class, c.num_classes, c.label_seed)
    xs, ys = collate([train[i] for i in subset.tolist()])
    d = model.discriminator
    opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        pick = torch.randint(0, len(subset), (64,), generator=gen)
        loss = supervised_loss(model.classify(xs[pick]), ys[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = load_data(cfg["data"], "test").tensors()
    with torch.no_grad():
        model.eval()
        acc = float((model.classify(x).argmax(1) == y).float().mean())
    return acc


def ssgan_part(data, spec, quick):
    steps = 5 if quick else spec["steps"]
    t0 = time.process_time()
    run = RUNS / f"ssgan-{data}"
    _train("ssgan", data, run, steps, ["--labels-per-class", str(spec["labels"]), "--feature-matching",
                                        *spec["opts"]])
    acc = evaluate(str(run), ["accuracy"])
    t1 = time.process_time()
    base = supervised_baseline(run, steps)
    t2 = time.process_time()
    return {"data": data, "labels_per_class": spec["labels"], "steps": steps, "ssgan_accuracy": acc["accuracy"],
            "test_images": acc["accuracy_n"], "supervised_only_accuracy": base,
            "ssgan_cpu_s": round(t1 - t0, 1), "baseline_cpu_s": round(t2 - t1, 1)}


def code_accuracy(model, data_cfg):
    """Accuracy of argmax Q(c | x) against the test labels under the best one-to-one code -> class map."""
    from scipy.optimize import linear_sum_assignment

    x, y = load_data(data_cfg, "test").tensors()
    with torch.no_grad():
        code = model.q(x)[0].argmax(1)
    k = model.config.cat_codes
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (code.numpy(), y.numpy()), 1)
    rows, cols = linear_sum_assignment(-conf)
    return float(conf[rows, cols].sum() / len(y)), conf.tolist(), dict(zip(rows.tolist(), cols.tolist()))


def infogan_part(quick):
    from dgm.sampling.codes import code_variation_grid
    from dgm.viz import save_grid

    steps = 5 if quick else INFOGAN["steps"]
    t0 = time.process_time()
    run = RUNS / "infogan-digits"
    _train("infogan", "digits", run, steps, INFOGAN["opts"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    mi = [(r["step"], r["mi_cat"]) for r in rows if r.get("split") == "train" and "mi_cat" in r]
    model = dgm.load(run)
    acc, conf, mapping = code_accuracy(model, model.run_config["data"])
    figures = []
    for i in range(model.config.cont_codes):
        grid = code_variation_grid(model, i, generator=torch.Generator().manual_seed(0))
        figures.append(Path(save_grid(model.to_unit(grid), OUT / f"infogan_vary_code_{i}.png", 10)).name)
    return {"data": "digits", "steps": steps, "code_accuracy": acc, "mi_lower_bound_final": mi[-1][1] if mi else None,
            "mi_lower_bound_max": float(np.log(model.config.cat_codes)), "mi_curve": mi, "confusion": conf,
            "code_to_class": mapping, "figures": figures, "cpu_s": round(time.process_time() - t0, 1)}


def main_():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", default="ssgan,infogan")
    args = p.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.process_time()
    name = "results_quick.json" if args.quick else "results.json"
    path = OUT / name
    res = json.loads(path.read_text()) if path.exists() else {"ssgan": {}, "infogan": None}

    def save():  # after every part, so a partial run keeps what it measured
        res["quick"] = args.quick
        res["cpu_s_total"] = round(sum(r["ssgan_cpu_s"] + r["baseline_cpu_s"] for r in res["ssgan"].values())
                                   + (res["infogan"] or {}).get("cpu_s", 0), 1)
        path.write_text(json.dumps(res, indent=1) + "\n")

    parts = args.parts.split(",")
    if "ssgan" in parts:
        for data, spec in SSGAN.items():
            res["ssgan"][data] = ssgan_part(data, spec, args.quick)
            print(json.dumps(res["ssgan"][data]), flush=True)
            save()
    if "infogan" in parts:
        res["infogan"] = infogan_part(args.quick)
        print(json.dumps({k: v for k, v in res["infogan"].items() if k not in ("mi_curve", "confusion")}), flush=True)
        save()
    print(f"this invocation: {time.process_time() - start:.1f} CPU s")
    print(f"total CPU of the measured parts {res['cpu_s_total']} s; {path}")


if __name__ == "__main__":
    main_()
