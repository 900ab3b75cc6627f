# What the rules build: the model kinds and baselines, the inputs and params the rules share,
# the prediction (sharded or not) and enhance helpers, and the target lists of `all`/`dataset`.
import re

from rocksr.codehash import kind_hash, stage_hash
from rocksr.config.enhance import stack_entries
from rocksr.config.leak import LEAKY_STRATEGY
from rocksr.config.pair_settings import PairSettings
from rocksr.config.split import strategy_params
from rocksr.config.sections import SECTIONS
from rocksr.config.training import resolve_training
from rocksr.data.masks import is_mask_path
from rocksr.data.splits import STRATEGIES
from rocksr.data.tiling import footprint_size
from rocksr.models.registry import is_stochastic, kind_names

# the model kinds of the registry (rocksr.models.registry), in table order
MODELS = list(kind_names())
BASELINES = ["identity", "histmatch", "mean"]


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


# The leak study's run: the same split, train and predict jobs (leak_split,
# leak_train_<kind>, leak_predict) on a leaky split strategy, the `{strategy}` wildcard, with
# the run's layout under leak_study/<strategy>/ (splits/, models/, state/, predictions/)
LEAK_RUN = f"{R}/leak_study/{{strategy}}"
# where the training jobs train: job-name prefix -> the run folder, and the end of the job's
# log and benchmark names (the leak run's wildcard)
TRAINING_RUNS = {"": (R, ""), "leak_": (LEAK_RUN, ".{strategy}")}


def leak_run(strategy):
    """The leak study's run folder for one split strategy."""
    return LEAK_RUN.format(strategy=strategy)


def leak_study_inputs():
    """What `leak_study` compares: the leak model's predictions on the run's own split and on
    the study's leaky split, with both split tables."""
    leaky = leak_run(LEAKY_STRATEGY)
    return {
        "splits": rules.test_views.output.splits,
        "counts": rules.split.output.counts,
        "own": prediction_stores()[LEAK["model"]],
        "leaky_splits": f"{leaky}/splits/splits.csv",
        "leaky_counts": f"{leaky}/splits/split_counts.csv",
        "leaky": f"{leaky}/predictions/{LEAK['model']}.zarr",
    }


def prior_checkpoint(kind, run=R):
    """The checkpoint a kind's training starts from: the regress model's of the same run, for a
    kind with `prior: regress` (the DDPM's predict-and-refine); else None."""
    section = config.get(kind) or {}
    if section.get("prior") == "regress":
        return section.get("prior_checkpoint") or f"{run}/models/regress/best.pt"
    return None


def train_params(kind, run=R):
    """The model's section and `data`, every default filled (rocksr.config): spelling out a
    default leaves the params, and so the training, untouched."""
    given = {**config[kind], "data": config["data"]}
    if prior_checkpoint(kind, run):
        given["prior_checkpoint"] = prior_checkpoint(kind, run)
    return as_json(resolve_training(SECTIONS[kind], given, kind))


def train_inputs(kind, run=R):
    """A training rule's inputs in a run (`run` may hold the `{strategy}` wildcard): the tiles,
    the run's splits, and the prior's checkpoint if any."""
    out = {
        "store": rules.build_dataset.output.store,
        "splits": f"{run}/splits/splits.csv",
    }
    if prior_checkpoint(kind, run):
        out["prior"] = prior_checkpoint(kind, run)
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


def predict_store(path):
    """The `predict` job's store: a shard's is temporary (deleted once gathered)."""
    return temp(directory(path)) if SHARDED else directory(path)


def predict_shards(kind, what):
    """The `predict` shard jobs' outputs of model `kind`: `what` is a path template with
    `{part}` (e.g. f"{R}/predictions/{{part}}.zarr")."""
    parts = [
        PREDICT_PART.format(model=kind, shard=i) for i in range(1, PREDICT_SHARDS + 1)
    ]
    return [what.format(part=p) for p in parts]


# the sampler study likewise: one job writes the study, or (shards > 1) each of N jobs the
# rows of its configurations (a temporary part) and `gather_sampler_study` writes the study
# (the end of the job's log and benchmark names: `.<i>-of-<N>` for a shard)
SAMPLER_STUDY_PART = f".{{shard}}-of-{PREDICT_SHARDS}" if SHARDED else ""


def sampler_study_outputs():
    """The sampler study's outputs (of `sampler_study`, or of `gather_sampler_study`)."""
    return {
        "csv": report(
            f"{R}/evaluation/sampler_study.csv",
            caption="../report/sampler_study.rst",
            category="Results",
        ),
        "timing": f"{R}/evaluation/sampler_study_timing.csv",
        "md": f"{R}/evaluation/sampler_study.md",
        "png": report(
            f"{R}/figures/sampler_study.png",
            caption="../report/sampler_study.rst",
            category="Results",
        ),
    }


# a `sampler_study` job's part (shards > 1)
SAMPLER_STUDY_PART_CSV = (
    f"{R}/evaluation/sampler_study.shards/{{shard}}-of-{PREDICT_SHARDS}.csv"
)


def sampler_study_parts():
    """The parts of the N `sampler_study` jobs, in shard order."""
    return expand(SAMPLER_STUDY_PART_CSV, shard=range(1, PREDICT_SHARDS + 1))


# what the `sampler_study` job writes: the study, or its part
SAMPLER_STUDY_OUTPUT_OPTIONS = (
    f" --shard {{wildcards.shard}}/{PREDICT_SHARDS} --out-part {{output.part:q}}"
    if SHARDED
    else " --out-csv {output.csv:q} --out-timing {output.timing:q} --out-md {output.md:q} "
    "--out-png {output.png:q}"
)


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
    targets = expand(
        f"{R}/enhanced/{{sample}}/{{model}}.tif", sample=list(SAMPLES), model=MODELS
    ) + expand(f"{R}/figures/enhance_{{sample}}.png", sample=list(SAMPLES))
    if ENHANCE["seam_study"]:
        targets.append(f"{R}/evaluation/seam_study.md")
    return targets + expand(STACK_OUTPUT, stack=list(STACKS), model=MODELS, ext="tif")


# micro-CT stacks (`enhance.stacks`): `stack_enhance` runs `rocksr enhance` on each with every
# model; with shards > 1 each of N jobs enhances a run of its pages into a temporary TIFF part
# and report, and `gather_enhance` writes the stack one job writes, byte for byte
# (rocksr.enhance.shards)
STACKS = stack_entries(ENHANCE["stacks"])
STACK_NAMES = "|".join(map(re.escape, STACKS)) or "(?!)"  # the wildcard's pattern
STACK_OUTPUT = f"{R}/enhanced_stacks/{{stack}}/{{model}}.{{ext}}"
STACK_PART = (
    "{stack}/{model}.shards/{shard}-of-%d" % PREDICT_SHARDS
    if SHARDED
    else "{stack}/{model}"
)


def stack_part(ext):
    """The `stack_enhance` job's output with extension `ext`: a shard's part is temporary."""
    path = f"{R}/enhanced_stacks/{STACK_PART}.{ext}"
    return temp(path) if SHARDED else path


def stack_parts(wildcards, ext):
    """The N `stack_enhance` parts (extension `ext`) of a stack and model, in shard order."""
    return [
        f"{R}/enhanced_stacks/"
        + STACK_PART.format(stack=wildcards.stack, model=wildcards.model, shard=i)
        + f".{ext}"
        for i in range(1, PREDICT_SHARDS + 1)
    ]


def stack_enhance_options(wildcards):
    """`rocksr enhance` options of the `stack_enhance` rule: the `enhance` rule's on the stack's
    raw pages, normalized as the training data were, and the job's shard."""
    pages = STACKS[wildcards.stack]["pages"]
    opts = [enhance_options(wildcards, normalize="from-checkpoint", whole=True)]
    opts += [f"--pages {pages}"] if pages is not None else []
    opts += [f"--shard {wildcards.shard}/{PREDICT_SHARDS}"] if SHARDED else []
    return " ".join(opts)


def enhance_options(wildcards, normalize="none", whole=False):
    """`rocksr enhance` options of the `enhance` rule (DDPM sampling as in `evaluate`); its
    input is the sample's normalized micro-CT (`normalize` none), of which it enhances the
    central `enhance.crop` square unless `whole` (a stack)."""
    opts = [
        f"--normalize {normalize}",
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
    if ENHANCE["crop"] is not None and not whole:
        opts.append(f"--crop {ENHANCE['crop']}")
    return " ".join(opts)


def all_targets():
    return dataset_targets() + train_targets() + evaluate_targets() + enhance_targets()
