# Resources per job (threads, mem_mb, runtime, gpu): `resources.<rule>` in the config (for a
# leak study rule `leak_<base>`, else `resources.<base>`), else `resources.default`, else the
# built-in values (rocksr.config.resources); the GPU helpers and the launcher of multi-process
# training.
import sys

from rocksr.config.resources import (
    RESOURCE_DEFAULTS,
    process_count,
    renamed_rule_problems,
    rule_resource,
)

_renamed = renamed_rule_problems(config.get("resources", {}))
if _renamed:
    sys.exit("\n".join(f"rocksr: {p}" for p in _renamed))


def res(rule_name, key):
    """A rule's resource from the config, falling back to the built-in defaults."""
    return rule_resource(config.get("resources", {}), rule_name, key)


def warn_threads_above_cores():
    """Say which rules ask for more threads than --cores (Snakemake caps them silently when it
    runs jobs locally; a cluster executor gives each job its own threads)."""
    cores = workflow.resource_settings.cores
    if not isinstance(cores, int):
        return
    names = (
        set(RESOURCE_DEFAULTS) - {"train"}
        | {f"train_{k}" for k in MODELS}
        | set(config.get("resources", {})) - {"default"}
    )
    over = sorted(
        f"{n} ({res(n, 'threads')})"
        for n in names
        if n != "default" and (res(n, "threads") or 1) > cores
    )
    if over:
        print(
            f"rocksr: --cores {cores} is less than the threads of {', '.join(over)}: run "
            "locally, those jobs get at most --cores threads (resources.<rule>.threads)",
            file=sys.stderr,
        )


def nprocs(rule_name):
    """Training processes of one job: `nprocs`, else one per GPU (`gpu`), of the same entry."""
    return process_count(config.get("resources", {}), rule_name)


def train_launcher(rule_name, threads):
    """The start of a training job's shell command, which runs `rocksr`: itself, or `torchrun`
    with one process per GPU (per `nprocs` on CPU), each with its share of the job's `threads`
    (docs/slurm.md)."""
    n = nprocs(rule_name)
    if n == 1:
        return f"OMP_NUM_THREADS={threads} rocksr"
    omp = max(1, int(threads) // n)
    return f"OMP_NUM_THREADS={omp} torchrun --standalone --nproc_per_node {n} --no-python rocksr"


def gpu_model(rule_name):
    """The GPU model a rule asks for (`resources.<rule>.gpu_model`, as `res`), "" for any."""
    return res(rule_name, "gpu_model") or ""
