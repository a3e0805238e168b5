# BigGAN table rows 6-7 (benchmarks/README.md): conditional biggan with per-block vs shared class embeddings.
# Run from the repository root: bash benchmarks/biggan_conditional_rows.sh (OUT=folder for the runs).
set -e
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
cd "${OUT:-/tmp/biggan-cond}" 2>/dev/null || { mkdir -p "${OUT:-/tmp/biggan-cond}"; cd "${OUT:-/tmp/biggan-cond}"; }
for v in per-block shared; do
  extra=""; [ $v = per-block ] && extra="--no-shared-embed"
  /usr/bin/time -f "%U %S" -o train-$v.cpu python -m dgm.cli train gan --arch biggan --objective hinge --attn-res 16 --conditional --cond projection $extra \
     --data fashion-mnist --hidden 16 --batch-size 64 --steps 100000000 --max-cpu-minutes 1 --seed 0 --ckpt-every 100000 --n-samples 64 --no-progress --out run-$v > train-$v.log 2>&1
  python -m dgm.cli eval run-$v --metric fid,kid,is,cas -n 1000 --seed 0 > eval-$v.json 2> eval-$v.err
done
echo done
