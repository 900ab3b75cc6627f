# The config: loaded and checked once, its provenance (config.resolved.yaml), the run's paths
# and samples, the resolved sections the rules read, and the checks of every rule's paths.
import json
import sys
from pathlib import Path

from rocksr.config.enhance import Enhance
from rocksr.config.evaluate import Evaluate
from rocksr.config.leak import LeakStudy
from rocksr.config.entry import plain
from rocksr.config.merge import ConfigError, resolve
from rocksr.config.provenance import inherited, key_list, resolved_text, value_sources
from rocksr.config.startup import workflow_config
from rocksr.config_checks import check_outputs_under, check_run_name
from rocksr.files import write_text
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
            f"the workflow's config.yaml): {key_list(_inherited)}. Every value in force and "
            f"its source: results/{RUN}/config.resolved.yaml",
            file=sys.stderr,
        )


# made at start-up, so that a dry run meets any problem with it too
RESOLVED_CONFIG = resolved_text(config, CONFIG_SOURCES)


def write_resolved_config():
    """results/<run>/config.resolved.yaml: every value in force and where it came from."""
    write_text(RESOLVED_CONFIG, Path(R, "config.resolved.yaml"))


R = f"results/{RUN}"
SAMPLES = {s["name"]: s for s in config["samples"]}
SYNTHETIC = [n for n, s in SAMPLES.items() if "synthetic" in s]
FIRST_SAMPLE = next(iter(SAMPLES))

# the resolved sections (every default filled) that the rules read
EVAL = resolve(Evaluate, config["evaluate"], "evaluate")
STUDY = EVAL["sampler_study"]
ENHANCE = resolve(Enhance, config.get("enhance"), "enhance")
LEAK = resolve(LeakStudy, config.get("leak_study"), "leak_study")
# samples per test tile of a stochastic model (the DDPM); deterministic models get 1
N_SAMPLES = int(EVAL["n_samples"])


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def check_rule_paths():
    """Every rule's outputs, logs and benchmarks stay under results/<run>/ (called last)."""
    for r in workflow.rules:
        paths = [*r.output, *r.log]
        if r.benchmark:
            paths.append(r.benchmark)
        check_outputs_under(R, paths)
