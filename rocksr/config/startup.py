"""The workflow's start-up: the config Snakemake loaded, made what rocksr uses and checked.

Kept apart from :mod:`rocksr.config_checks` (which a stage imports): the start-up reaches the
image readers and Snakemake, which no stage's code version should cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from snakemake.utils import validate

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
    (:func:`~rocksr.config_checks.schema_problem`), then Snakemake's validation, which fills
    the schema's defaults; what the config alone decides
    (:func:`~rocksr.config_feasibility.check_feasibility`); images two samples share
    (:func:`~rocksr.config_feasibility.check_distinct_images`).
    """
    schema = yaml.safe_load(Path(schema_file).read_text())
    cfg = plain(config)
    if isinstance(cfg.get("samples"), str | dict):
        cfg["samples"] = expand_samples(cfg["samples"], base_dir)
    cfg = coerce_to_schema(cfg, schema)
    precheck_config(cfg, schema)
    problem = schema_problem(cfg, schema)
    if problem:
        raise ConfigError(problem)
    validate(cfg, schema=str(Path(schema_file).resolve()))
    check_feasibility(cfg)
    check_distinct_images(cfg["samples"])
    return cfg
