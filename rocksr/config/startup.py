"""The workflow's start-up: the config Snakemake loaded, made what rocksr uses and checked.

Kept apart from :mod:`rocksr.config_checks` (which a stage imports): the start-up reaches the
image readers and Snakemake, which no stage's code version should cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from rocksr.config.entry import coerce_to_schema, plain
from rocksr.config.merge import ConfigError
from rocksr.config.samples import expand_samples
from rocksr.config_checks import precheck_config, schema_problem
from rocksr.config_feasibility import check_distinct_images, check_feasibility


def workflow_config(config: Mapping, schema_file: Path, base_dir: Path) -> dict:
    """The config as the workflow uses it, from what Snakemake loaded (YAML, JSON, ``--config``),
    checked before any job runs; every problem is a one-line :class:`ConfigError`.

    In order: plain dicts and lists (:func:`~rocksr.config.entry.plain`); ``samples`` expanded
    to the explicit list (``base_dir``: where relative sheets and globs are taken from); text
    read as the numbers the schema wants (:func:`~rocksr.config.entry.coerce_to_schema`);
    :func:`~rocksr.config_checks.precheck_config`; the schema (``schema_file``) as one line
    (:func:`~rocksr.config_checks.schema_problem`); the schema's defaults filled in
    (:func:`fill_defaults`); what the config alone decides
    (:func:`~rocksr.config_feasibility.check_feasibility`); images two samples share
    (:func:`~rocksr.config_feasibility.check_distinct_images`).
    """
    schema = load_schema(schema_file)
    cfg = plain(config)
    if isinstance(cfg.get("samples"), str | dict):
        cfg["samples"] = expand_samples(cfg["samples"], base_dir)
    cfg = coerce_to_schema(cfg, schema)
    precheck_config(cfg, schema)
    problem = schema_problem(cfg, schema)
    if problem:
        raise ConfigError(problem)
    fill_defaults(cfg, schema)
    check_feasibility(cfg)
    check_distinct_images(cfg["samples"])
    return cfg


def load_schema(schema_file: Path) -> dict:
    """The config schema (YAML), read by libyaml where PyYAML has it (7x faster than the pure
    Python reader: every Snakemake start reads the 20 KB schema)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(schema_file).read_text(), Loader=loader)  # noqa: S506 (a safe loader)


def fill_defaults(cfg: dict, schema: dict) -> None:
    """Fill ``cfg`` (valid under ``schema``) with the schema's defaults, in place: each
    ``default`` of a property the config leaves out, then the defaults inside it, as
    ``snakemake.utils.validate(..., set_default=True)`` does (jsonschema's recipe for defaults,
    https://python-jsonschema.readthedocs.io/en/latest/faq/), on the schema already read."""
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, subschema):  # noqa: ANN001, ANN202
        if isinstance(instance, dict):
            for name, prop in props.items():
                if isinstance(prop, dict) and "default" in prop:
                    instance.setdefault(name, prop["default"])
        yield from properties(validator, props, instance, subschema)

    validators.extend(Draft202012Validator, {"properties": set_defaults})(schema).validate(cfg)
