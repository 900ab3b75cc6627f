import hashlib
import json
import os
import sys
import time
from pathlib import Path

import rocksr
from rocksr.codehash import kind_hash, stage_hash
from rocksr.config.enhance import Enhance
from rocksr.config.evaluate import Evaluate
from rocksr.config.leak import LeakStudy
from rocksr.config.entry import plain
from rocksr.config.merge import ConfigError, resolve
from rocksr.config.provenance import inherited, resolved_text, value_sources
from rocksr.lifecycle import process_identity
from rocksr.config.sections import SECTIONS
from rocksr.config.training import resolve_training
from rocksr.config.startup import workflow_config
from rocksr.config_checks import check_outputs_under, check_run_name
from rocksr.files import write_text
from rocksr.models.registry import is_stochastic, kind_names
from rocksr.data.masks import is_mask_path
from rocksr.data.tiling import footprint_size
from snakemake.common.configfile import load_configfile

# The config enters rocksr here, once (rocksr.config.startup.workflow_config): plain dicts and
# lists (a JSON config file gives OrderedDicts), a sample sheet or {mct: <glob>, sem: <glob>}
# made the explicit list, text read as the numbers the schema wants, the schema's defaults
# filled; then checked, each problem one line and before any job.
try:
    _checked = workflow_config(
        config,
        Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
        Path.cwd(),
    )
except ConfigError as _error:
    sys.exit(f"rocksr: {_error}")  # the message alone: no traceback
config.clear()
config.update(_checked)

RUN = check_run_name(config["run"])


def _config_layers():
    """The config files in the order Snakemake applied them (read as Snakemake reads them:
    JSON first, then YAML), then --config."""
    given = [Path(p) for p in workflow.config_settings.configfiles]
    layers = [("config.yaml", plain(load_configfile("config.yaml")))]
    layers += [(str(p), plain(load_configfile(str(p)))) for p in given]
    if workflow.config_settings.config:
        layers.append(("--config", plain(workflow.config_settings.config)))
    return layers


CONFIG_LAYERS = _config_layers() if Path("config.yaml").is_file() else []
CONFIG_SOURCES = value_sources(CONFIG_LAYERS)
if len(CONFIG_LAYERS) > 1:
    _inherited = inherited(CONFIG_SOURCES, "config.yaml")
    if _inherited:
        print(
            f"rocksr: {len(_inherited)} config value(s) come from config.yaml, not from "
            f"{', '.join(n for n, _ in CONFIG_LAYERS[1:])} (Snakemake merges --configfile onto "
            f"the workflow's config.yaml): {', '.join(_inherited)}. Every value in force and "
            f"its source: results/{RUN}/config.resolved.yaml",
            file=sys.stderr,
        )


# made at start-up, so that a dry run meets any problem with it too
RESOLVED_CONFIG = resolved_text(config, CONFIG_SOURCES)


def write_resolved_config():
    """results/<run>/config.resolved.yaml: every value in force and where it came from."""
    write_text(RESOLVED_CONFIG, Path(R, "config.resolved.yaml"))


WORKFLOW_START = time.time()
# rocksr jobs die with the shell that runs them (rocksr.lifecycle), so that a killed job never
# publishes later; a rocksr started by hand outside Snakemake is not tied to its terminal.
# A Snakemake killed by SIGKILL leaves its job shells running: jobs also watch this process.
# (Set here for the jobs, not read: no `envvars:` assertion applies. Cluster jobs re-parse this.)
os.environ.update(
    ROCKSR_DIE_WITH_PARENT="1", ROCKSR_WORKFLOW_PROCESS=process_identity()
)
R = f"results/{RUN}"
SAMPLES = {s["name"]: s for s in config["samples"]}
SYNTHETIC = [n for n, s in SAMPLES.items() if "synthetic" in s]

# Resources per job come from `resources.<name>` in the config, else `resources.default`, else these.
RESOURCE_DEFAULTS = {
    "default": {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0},
    "synthetic_sample": {"mem_mb": 6000, "runtime": 30},
    "normalize": {"mem_mb": 4000, "runtime": 30},
    "build_dataset": {"threads": 2, "mem_mb": 4000, "runtime": 60},
    # every training rule (train_<kind>) that has no entry of its own
    "train": {"threads": 4, "mem_mb": 16000, "runtime": 1440, "gpu": 1},
    "train_cgan": {"threads": 4, "mem_mb": 16000, "runtime": 1440, "gpu": 1},
    "train_ddpm": {"threads": 4, "mem_mb": 16000, "runtime": 2880, "gpu": 1},
    "predict": {"threads": 4, "mem_mb": 16000, "runtime": 720, "gpu": 1},
    "sampler_study": {"threads": 4, "mem_mb": 16000, "runtime": 720, "gpu": 1},
    "baseline": {"mem_mb": 4000, "runtime": 60},
    "metrics": {"threads": 2, "mem_mb": 4000, "runtime": 120},
    "enhance": {"threads": 4, "mem_mb": 8000, "runtime": 720, "gpu": 1},
    "seam_study": {"threads": 4, "mem_mb": 8000, "runtime": 240, "gpu": 1},
    "leak_study": {"threads": 4, "mem_mb": 16000, "runtime": 2880, "gpu": 1},
}


def res(rule_name, key):
    """A rule's resource from the config, falling back to the built-in defaults."""
    user = config.get("resources", {})
    kind_rule = RESOURCE_DEFAULTS["train"] if rule_name.startswith("train_") else {}
    for source in (
        user.get(rule_name, {}),
        user.get("default", {}),
        RESOURCE_DEFAULTS.get(rule_name, kind_rule),
        RESOURCE_DEFAULTS["default"],
    ):
        if key in source:
            return source[key]
    return None


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
    """Training processes of one job: `resources.<rule>.nprocs`, else one per GPU (`gpu`)."""
    return max(1, int(res(rule_name, "nprocs") or res(rule_name, "gpu") or 1))


def train_launcher(rule_name):
    """The start of the shell command that runs `rocksr`: itself (the command of one process is
    unchanged, so no job reruns), or `torchrun` with one process per GPU (per `nprocs` on CPU),
    each with its share of the job's threads (docs/slurm.md)."""
    n = nprocs(rule_name)
    if n == 1:
        return "OMP_NUM_THREADS={threads} rocksr"
    omp = max(1, int(res(rule_name, "threads") or 1) // n)
    return f"OMP_NUM_THREADS={omp} torchrun --standalone --nproc_per_node {n} --no-python rocksr"


def gpu_model(rule_name):
    user = config.get("resources", {})
    return user.get(rule_name, {}).get(
        "gpu_model", user.get("default", {}).get("gpu_model", "")
    )


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def raw_image(wildcards, modality):
    s = SAMPLES[wildcards.sample]
    if "synthetic" in s:
        return f"{R}/raw/{wildcards.sample}/{modality}.tif"
    return s[modality]


def normalized(name):
    """Every sample's `normalized/<sample>/<name>`, in sample order."""
    return expand(f"{R}/normalized/{{sample}}/{name}", sample=list(SAMPLES))


def mask_image_input(wildcards):
    """The sample's mask image, when its `mask` names one (none / auto_fov need no file)."""
    spec = SAMPLES[wildcards.sample].get("mask")
    return [spec] if is_mask_path(spec) else []


def dataset_targets():
    return [
        f"{R}/dataset/tiles.zarr",
        f"{R}/dataset/manifest.csv",
        f"{R}/dataset/dropped_tiles.csv",
        f"{R}/splits/splits.csv",
        f"{R}/splits/split_counts.csv",
        f"{R}/splits/split_map.png",
        f"{R}/figures/figure1.png",
    ] + expand(f"{R}/normalized/{{sample}}/histograms.png", sample=list(SAMPLES))


# the model kinds of the registry (rocksr.models.registry), in table order
MODELS = list(kind_names())
BASELINES = ["identity", "histmatch", "mean"]
EVAL = resolve(Evaluate, config["evaluate"], "evaluate")
STUDY = EVAL["sampler_study"]
ENHANCE = resolve(Enhance, config.get("enhance"), "enhance")
LEAK = resolve(LeakStudy, config.get("leak_study"), "leak_study")
FIRST_SAMPLE = next(iter(SAMPLES))
# samples per test tile of a stochastic model (the DDPM); deterministic models get 1
N_SAMPLES = int(EVAL["n_samples"])


def model_dir(kind):
    return f"{R}/models/{kind}"


def prior_checkpoint(kind):
    """The checkpoint a kind's training starts from: the regress model's, for a DDPM with
    `prior: regress` (predict-and-refine); else None."""
    section = config.get(kind) or {}
    if kind == "ddpm" and section.get("prior") == "regress":
        return section.get("prior_checkpoint") or f"{R}/models/regress/best.pt"
    return None


def train_params(kind):
    """The model's section and `data`, every default filled (rocksr.config): spelling out a
    default leaves the params, and so the training, untouched."""
    given = {**config[kind], "data": config["data"]}
    if prior_checkpoint(kind):
        given["prior_checkpoint"] = prior_checkpoint(kind)
    return as_json(resolve_training(SECTIONS[kind], given, kind))


def train_inputs(kind):
    """A training rule's inputs: the tiles, the splits, and the prior's checkpoint if any."""
    out = {
        "store": rules.build_dataset.output.store,
        "splits": rules.split.output.splits,
    }
    if prior_checkpoint(kind):
        out["prior"] = prior_checkpoint(kind)
    return out


def train_targets():
    return expand(
        f"{R}/models/{{kind}}/{{name}}", kind=MODELS, name=["best.pt", "loss_curve.png"]
    )


def prediction_stores():
    return {n: f"{R}/predictions/{n}.zarr" for n in MODELS + BASELINES}


def prediction_args(wildcards, input):
    return " ".join(f"{n}={p}" for n, p in zip(MODELS + BASELINES, input.predictions))


# `evaluate.shards`: 1 = one `predict` job per model writes predictions/<model>.zarr; N > 1 =
# N `predict` jobs per model write shards (whole batches each) and `gather_predictions`
# assembles the same store byte for byte (rocksr.data.predstore)
PREDICT_SHARDS = int(EVAL["shards"])
SHARDED = PREDICT_SHARDS > 1
# the `predict` job's store, log and benchmark, and the option that picks its shard
PREDICT_PART = "{model}.shards/{shard}-of-%d" % PREDICT_SHARDS if SHARDED else "{model}"
PREDICT_SHARD_OPTION = (
    f" --shard {{wildcards.shard}}/{PREDICT_SHARDS}" if SHARDED else ""
)


def predict_shards(kind, what):
    """The `predict` shard jobs' outputs of model `kind`: `what` is a path template with
    `{part}` (e.g. f"{R}/predictions/{{part}}.zarr")."""
    parts = [
        PREDICT_PART.format(model=kind, shard=i) for i in range(1, PREDICT_SHARDS + 1)
    ]
    return [what.format(part=p) for p in parts]


def predict_n_samples(wildcards):
    """Samples per test tile for `rocksr predict` (K for a stochastic kind, else 1)."""
    return N_SAMPLES if is_stochastic(wildcards.model) else 1


def evaluate_targets():
    targets = [
        f"{R}/evaluation/table1.md",
        f"{R}/evaluation/table1.csv",
        f"{R}/figures/figure2.png",
        f"{R}/figures/figure3.png",
        f"{R}/figures/training_curves.png",
        f"{R}/figures/rock_statistics.png",
        f"{R}/figures/perception_distortion.png",
        f"{R}/evaluation/budget.md",
    ]
    if N_SAMPLES > 1:
        targets.append(f"{R}/figures/uncertainty.png")
    if LEAK["enabled"]:
        targets += [f"{R}/evaluation/leak_study.md", f"{R}/figures/leak_study.png"]
    if STUDY["enabled"]:
        targets += [
            f"{R}/evaluation/sampler_study.csv",
            f"{R}/evaluation/sampler_study.md",
            f"{R}/figures/sampler_study.png",
        ]
    return targets


def enhance_targets():
    if not ENHANCE["enabled"]:
        return []
    return (
        expand(
            f"{R}/enhanced/{{sample}}/{{model}}.tif", sample=list(SAMPLES), model=MODELS
        )
        + expand(f"{R}/figures/enhance_{{sample}}.png", sample=list(SAMPLES))
        + [f"{R}/evaluation/seam_study.md"]
    )


def enhance_options(wildcards):
    """`rocksr enhance` options of the `enhance` rule (DDPM sampling as in `evaluate`)."""
    opts = [
        "--normalize none",  # the input is the sample's normalized micro-CT
        f"--fuse {ENHANCE['fuse']}",
        f"--sampler {EVAL['sampler']} --seed {ENHANCE['seed']}",
        f"--batch-size {ENHANCE['batch_size']}",
    ]
    if EVAL["steps"]:
        opts.append(f"--steps {EVAL['steps']}")
    if ENHANCE["window"] is not None:  # else each model kind's own
        opts.append(f"--window {ENHANCE['window']}")
    if ENHANCE["overlap"] is not None:
        opts.append(f"--overlap {ENHANCE['overlap']}")
    return " ".join(opts)


def all_targets():
    return dataset_targets() + train_targets() + evaluate_targets() + enhance_targets()


def check_rule_paths():
    """Every rule's outputs, logs and benchmarks stay under results/<run>/ (called last)."""
    for r in workflow.rules:
        paths = [*r.output, *r.log]
        if r.benchmark:
            paths.append(r.benchmark)
        check_outputs_under(R, paths)


def collect_warnings():
    """Print every WARNING line of the rule logs written by this invocation and write them to
    results/<run>/warnings.txt (Snakemake shows a rule's stderr only when it fails). Never fails
    the run itself."""
    try:
        _collect_warnings()
    except OSError as exc:
        print(
            f"rocksr: could not collect warnings from {R}/logs ({exc})", file=sys.stderr
        )


def _collect_warnings():
    lines = []
    for log_file in sorted(Path(R, "logs").rglob("*.log")):
        if log_file.stat().st_mtime < WORKFLOW_START:
            continue  # an earlier invocation's log
        for line in log_file.read_text(errors="replace").splitlines():
            if " WARNING " in line:
                name = log_file.relative_to(Path(R, "logs"))
                lines.append(f"{name}: {line.split(' WARNING ', 1)[1]}")
    out = Path(R, "warnings.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{line}\n" for line in lines))
    if lines:
        print(f"rocksr: {len(lines)} warning(s), also in {out}:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
