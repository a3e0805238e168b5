#!/usr/bin/env bash
# Checks that need a CUDA GPU, run from the repository root on a machine with python3 + CUDA PyTorch,
# scikit-learn and pytest (the lent GPU machine has them):   OUT=/tmp/gpu bash benchmarks/gpu_checks.sh
# 1. the Inception-v3 cross-check against torchvision (skipped where torchvision is missing);
# 2. PixelCNN on digits on CUDA, fp32 and --amp (bf16 where supported), then dgm eval on the GPU and on the CPU;
# 3. a DCGAN with --amp;
# 4. the whole test suite with a GPU visible (device "auto" picks CUDA), cut off after $SUITE_SECONDS (default 300);
# 5. with MNIST_DIR=DIR (the MNIST IDX files): the any-order table on binarized MNIST (benchmarks/anyorder_tables.py,
#    NADE, MADE 1/32 orders, PixelCNN, Gated PixelCNN, LMConv 1/8 S-curve orders; whole-image and completion NLL).
# 6. only with MODES_FULL=1: the two toy-mixture protocols at full length (dgm bench modes --protocol veegan|pacgan,
#    issue 15). These are small MLPs: CPU-bound, one thread per run. Measured on the 2-core build machine: setting A
#    takes 3-16 CPU-min per run (25k updates; unrolled-5 and minibatch-disc 27-41 CPU-min), setting B 20-33 CPU-s
#    per epoch (non-saturating to PacGAN4, 2026-12-03), i.e. 2-4 CPU-hours per run of 400 epochs and about 500
#    CPU-hours for its 8 rows x 2 mixtures x 10 seeds: about 1.5 days on 14 cores, far beyond one device session.
# amp_compile: benchmarks/amp_compile.py on CUDA (training images/s eager vs --compile vs --amp; eager vs compiled
#    sample/eval calls), the table the CPU run in benchmarks/README.md has; AMP_COMPILE=0 skips it.
# Everything is written under $OUT (log.txt, pytest.txt, eval JSONs). Keep OMP_NUM_THREADS small with pytest -n:
# 8 workers x 16 threads each made the suite crawl.
set -u
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 DGM_CACHE_DIR=$OUT/cache
R=/tmp/gpu_runs; rm -rf "$R"; mkdir -p "$R"
dgm() { timeout 150 python3 -m dgm "$@"; }  # no single step may hang the whole check
TIMEFORMAT="wall %R s"
{
nvidia-smi -L
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
echo "== 1. Inception-v3 vs torchvision"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_inception.py -k torchvision -rs 2>&1 | tail -n 3
echo "== 2. pixelcnn on digits, CUDA"
for amp in no-amp amp; do
  time dgm train pixelcnn --data digits --steps 1000 --device cuda --$amp \
      --out "$R/pixelcnn-$amp" --no-progress 2>&1 | tail -n 4
  dgm eval "$R/pixelcnn-$amp" --metric nll --device cuda > "$OUT/nll-$amp.json" && cat "$OUT/nll-$amp.json"
done
for dev in cuda cpu; do
  time dgm eval "$R/pixelcnn-no-amp" --metric fid,kid,is,pr,dc,swd,msssim -n 2000 \
      --device $dev --seed 0 > "$OUT/eval-$dev.json"; cat "$OUT/eval-$dev.json"
done
echo "== 3. DCGAN on digits, CUDA --amp"
dgm train gan --data digits --steps 300 --device cuda --amp --out "$R/gan-amp" --no-progress 2>&1 | tail -n 3
dgm eval "$R/gan-amp" --metric fid,kid,pr,dc -n 1000 --device cuda
echo "== 4. test suite (GPU visible)"
OMP_NUM_THREADS=2 timeout "${SUITE_SECONDS:-300}" python3 -m pytest -q -n 7 -p no:cacheprovider --durations=15 \
    tests > "$OUT/pytest.txt" 2>&1; echo "pytest exit $?"; tail -n 30 "$OUT/pytest.txt"
echo "== 5. binarized MNIST, any-order table (MNIST_DIR=${MNIST_DIR:-unset})"
if [ -n "${MNIST_DIR:-}" ]; then
  time timeout "${ANYORDER_SECONDS:-480}" python3 benchmarks/anyorder_tables.py --datasets mnist --data-dir "$MNIST_DIR" \
      --device cuda --jobs 1 --parts ab --steps "${ANYORDER_STEPS:-2000}" --runs "$R/anyorder" \
      --json "$OUT/anyorder_mnist.json" 2>&1 | tail -n 25
else
  echo "skipped: set MNIST_DIR to the folder holding train-images-idx3-ubyte[.gz] and the other MNIST files"
fi
if [ "${MODES_FULL:-0}" = 1 ]; then
  echo "== 6. toy-mixture protocols at full length"
  J=${MODES_JOBS:-14}
  time python3 -m dgm bench modes --protocol veegan --seeds 5 --jobs "$J" --out "$OUT/modes-veegan" \
      --objectives minimax,non-saturating,wgan-gp,hinge,unrolled-5,pacgan2,pacgan3,pacgan4,minibatch-disc,mbstd,pacgan4+mbstd,ema,minimax+ema,wgan-gp+ema
  time python3 -m dgm bench modes --protocol pacgan --seeds 10 --jobs "$J" --out "$OUT/modes-pacgan" \
      --objectives non-saturating,pacgan2,pacgan3,pacgan4,minibatch-disc,mbstd,ema,pacgan4+ema
fi
echo "== 7. StyleGAN on digits, CUDA (row F of benchmarks/stylegan_ablation.py, then demodulation)"
for mod in adain demod; do
  dgm train gan --arch stylegan --modulation $mod --data digits --steps 2000 --device cuda --hidden 16 --latent-dim 32 \
      --batch-size 32 --r1-every 4 --mbstd --lr 1e-3 --beta1 0 --beta2 0.99 --ema-decay 0.995 \
      --out "$R/stylegan-$mod" --no-progress 2>&1 | tail -n 3
  dgm eval "$R/stylegan-$mod" --metric fid,kid -n 1000 --device cuda --seed 0
  dgm sample "$R/stylegan-$mod" --style-mix --device cuda --out "$OUT/stylegan-$mod-style-mix.png"
done

echo "== progan. ProGAN Table 1 rows on Fashion-MNIST 32x32, CUDA, 10x the CPU table's images (PROGAN=0 skips)"
if [ "${PROGAN:-1}" = 1 ]; then
  time python3 benchmarks/progan_ablation.py --device cuda --steps "${PROGAN_STEPS:-10000}" --phase-images 40000 \
      --hidden 32 --n-eval 5000 --runs "$R/progan" --out "$OUT/progan" 2>&1 | tail -n 8
fi

echo "== gan_archs. DCGAN/SAGAN/BigGAN/ProGAN/StyleGAN on Fashion-MNIST 32x32, CUDA (GAN_ARCHS=0 skips)"
# benchmarks/gan_archs.py at GAN_ARCHS_MINUTES (default 10) of process CPU time per arch (on CUDA the training
# process's CPU time is close to its wall time: it drives the GPU), the five trained side by side on the one GPU.
if [ "${GAN_ARCHS:-1}" = 1 ]; then
  time timeout 1500 python3 benchmarks/gan_archs.py --device cuda --minutes "${GAN_ARCHS_MINUTES:-10}" -n 5000 \
      --phase-images 20000 --runs "$R/gan_archs" --out "$OUT/gan_archs" 2>&1 | tail -n 12
fi
echo "== amp_compile. training images/s: eager fp32 vs --compile vs --amp (bf16), four models (AMP_COMPILE=0 skips)"
if [ "${AMP_COMPILE:-1}" = 1 ]; then
  time timeout 900 python3 benchmarks/amp_compile.py --device cuda --threads 1 --json "$OUT/amp_compile.json" 2>&1 | tail -n 17
fi
echo "== biggan. BigGAN ablation rows + SAGAN/DCGAN, Fashion-MNIST, CUDA (BIGGAN=0 skips; speed table stays CPU)"
if [ "${BIGGAN:-1}" = 1 ]; then
  time timeout 1500 python3 benchmarks/biggan_ablation.py --device cuda --minutes "${BIGGAN_MINUTES:-5}" -n 5000 \
      --parallel 7 --runs "$R/biggan" --out "$OUT/biggan" 2>&1 | tail -n 14
fi
} 2>&1 | tee "$OUT/log.txt"
