#!/usr/bin/env bash
# The whole study on the semi-real pair (docs/synthetic.md; results in docs/benchmarks.md): the real North Sea sandstone
# SEM plus a micro-CT simulated from it by `rocksr simulate-mct` (partial-volume factor 4).
#   scripts/run_semireal.sh                 # SEM from ../shared/data/real (the default below)
#   ROCKSR_REAL_SEM=/path/to/sem.png scripts/run_semireal.sh [extra snakemake arguments]
# The SEM is read where it lies and never copied into the project; the simulated pair is written
# to results/semireal_input/ (ignored by git). About 30-45 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SEM="${ROCKSR_REAL_SEM:-../shared/data/real/northsea_sandstone_sem_bse_3000x2250.png}"
OUT=results/semireal_input
if [ ! -f "$SEM" ]; then
  echo "run_semireal: SEM image $SEM not found; set ROCKSR_REAL_SEM to the North Sea SEM PNG" >&2
  exit 2
fi
if [ ! -f "$OUT/mct.tif" ] || [ ! -f "$OUT/sem.tif" ]; then
  mkdir -p "$OUT"
  echo "simulating the micro-CT of $SEM (partial-volume factor 4) -> $OUT/"
  rocksr simulate-mct --sem "$SEM" --seed 0 --forward '{"partial_volume_factor": 4}' \
    --out "$OUT/mct.tif" --out-sem "$OUT/sem.tif"
fi
start=$(date +%s)
python -m snakemake --configfile configs/semireal.yaml --cores "${CORES:-2}" "$@"
echo "run_semireal: workflow finished in $(( $(date +%s) - start )) s"
echo "Table 1: results/semireal/evaluation/table1.md"
