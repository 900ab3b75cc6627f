#!/usr/bin/env bash
# Run by Snakemake inside the freshly created conda env (--software-deployment-method conda),
# from the workflow's working directory. Installs rocksr itself into the env, so that the rules'
# `rocksr` commands resolve there. Set ROCKSR_SRC to the repository when the working directory
# (-d) is not the repository root.
set -euo pipefail
src="${ROCKSR_SRC:-$PWD}"
if [ ! -f "$src/pyproject.toml" ] || ! grep -q '^name = "rocksr"' "$src/pyproject.toml"; then
    echo "rocksr post-deploy: $src is not the rocksr repository; set ROCKSR_SRC" >&2
    exit 1
fi
python -m pip install --no-deps "$src"
