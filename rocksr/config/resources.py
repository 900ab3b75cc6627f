"""Each rule's built-in resources (threads, mem_mb, runtime, gpu), torch-free: the workflow
(workflow/rules/resources.smk) reads them; `resources.<rule>` in the config, else
`resources.default`, overrides them (docs/slurm.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# per rule name; "train" is every training rule (train_<kind>) without an entry of its own
RESOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "default": {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0},
    "synthesize": {"mem_mb": 6000, "runtime": 30},
    "normalize": {"mem_mb": 4000, "runtime": 30},
    "build_dataset": {"threads": 2, "mem_mb": 4000, "runtime": 60},
    "train": {"threads": 4, "mem_mb": 16000, "runtime": 1440, "gpu": 1},
    "train_cgan": {"threads": 4, "mem_mb": 16000, "runtime": 1440, "gpu": 1},
    "train_ddpm": {"threads": 4, "mem_mb": 16000, "runtime": 2880, "gpu": 1},
    "predict": {"threads": 4, "mem_mb": 16000, "runtime": 720, "gpu": 1},
    "sampler_study": {"threads": 4, "mem_mb": 16000, "runtime": 720, "gpu": 1},
    "baseline": {"mem_mb": 4000, "runtime": 60},
    "evaluate": {"threads": 2, "mem_mb": 4000, "runtime": 120},
    "enhance": {"threads": 4, "mem_mb": 8000, "runtime": 720, "gpu": 1},
    "seam_study": {"threads": 4, "mem_mb": 8000, "runtime": 240, "gpu": 1},
    "leak_study": {"mem_mb": 4000, "runtime": 60},
}

# the former names of renamed rules: `resources.<old name>` in a config is refused, not ignored
RENAMED_RULES: dict[str, str] = {"metrics": "evaluate", "synthetic_sample": "synthesize"}


# the prefix of the leak study's rules (`leak_split`, `leak_train_<kind>`, `leak_predict`, ...):
# each is its base rule's job on another split, with the base rule's resources unless the
# config names the leak rule itself
LEAK_RULE_PREFIX = "leak_"


def _sources(user: Mapping[str, Any], rule_name: str) -> list[Mapping[str, Any]]:
    """Where a rule's resources come from, first first: the config's ``resources`` (``user``)
    for the rule, for its base rule (a leak study rule ``leak_<base>``), its ``default``, the
    built-in values of the (base) rule (of ``train`` for a ``train_<kind>`` rule without its
    own), the built-in default."""
    # `leak_study` is a rule of its own, with its own built-in values
    base = rule_name if rule_name in RESOURCE_DEFAULTS else rule_name.removeprefix(LEAK_RULE_PREFIX)
    kind_rule = RESOURCE_DEFAULTS["train"] if base.startswith("train_") else {}
    return [
        user.get(rule_name, {}),
        user.get(base, {}),
        user.get("default", {}),
        RESOURCE_DEFAULTS.get(base, kind_rule),
        RESOURCE_DEFAULTS["default"],
    ]


def rule_resource(user: Mapping[str, Any], rule_name: str, key: str) -> Any:
    """A rule's resource ``key`` from the first of its sources (:func:`_sources`) that has it;
    None if none has."""
    for source in _sources(user, rule_name):
        if key in source:
            return source[key]
    return None


def process_count(user: Mapping[str, Any], rule_name: str) -> int:
    """Training processes of one job: ``nprocs``, else one per GPU (``gpu``), from the first
    source that sets either, so that the processes match the GPUs of the same entry."""
    for source in _sources(user, rule_name):
        for key in ("nprocs", "gpu"):
            if source.get(key):
                return max(1, int(source[key]))
        if "nprocs" in source or "gpu" in source:  # gpu: 0 here: one process
            return 1
    return 1


def renamed_rule_problems(user: Mapping[str, Any]) -> list[str]:
    """One line per ``resources.<name>`` that names a rule by its former name."""
    return [
        f"resources.{old}: the rule `{old}` is now `{new}`; rename the key to resources.{new}"
        for old, new in RENAMED_RULES.items()
        if old in user
    ]
