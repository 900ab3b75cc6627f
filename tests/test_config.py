"""The typed config sections (rocksr.config) hold the defaults; the schema agrees with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rocksr.config.ddpm import DDPM
from rocksr.config.merge import ConfigError, merge_known, resolve, section_defaults
from rocksr.config.sections import SECTIONS

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def _schema_defaults(node: dict, defs: dict, path: str, out: dict) -> None:
    """Every ``default`` in the schema below ``node``: {dotted.path: value}."""
    if "$ref" in node:
        _schema_defaults(defs[node["$ref"].rsplit("/", 1)[-1]], defs, path, out)
    if "default" in node and node["default"] != {}:
        out[path] = node["default"]
    for key, sub in (node.get("properties") or {}).items():
        _schema_defaults(sub, defs, f"{path}.{key}" if path else key, out)


def _typed(path: str):
    section, *rest = path.split(".")
    value = section_defaults(SECTIONS[section])
    for key in rest:
        value = value[key]
    return value


def test_every_schema_default_equals_the_typed_default() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    found: dict = {}
    _schema_defaults(schema, schema.get("definitions", {}), "", found)
    checked = 0
    for path, value in found.items():
        if path.split(".")[0] not in SECTIONS:  # run, seed: workflow-level keys
            continue
        assert _typed(path) == value, f"{path}: schema default {value!r} != typed default"
        checked += 1
    assert checked >= 20  # the walk reaches the nested sections


def test_every_schema_section_key_is_a_typed_key() -> None:
    """A key the schema allows but the typed section lacks would be refused at run time."""
    schema = yaml.safe_load(SCHEMA.read_text())
    for name, cls in SECTIONS.items():
        typed = section_defaults(cls)
        props = schema["properties"][name].get("properties", {})
        if name == "normalize":
            props = schema["definitions"]["normalize_modality"]["properties"]
            typed = typed["mct"]
        missing = sorted(set(props) - set(typed))
        assert not missing, f"{name}: schema keys without a typed default: {missing}"


def test_merge_known_fills_nested_defaults_and_refuses_unknown_keys() -> None:
    cfg = resolve(DDPM, {"lr": 1e-3, "unet": {"layers_per_block": 1}}, "ddpm")
    assert cfg["lr"] == 1e-3 and cfg["unet"]["layers_per_block"] == 1
    assert cfg["unet"]["block_out_channels"] == [64, 128, 256, 512]
    assert cfg["threshold"] == {"mode": "clip", "range": 1.0, "ratio": 0.995}
    with pytest.raises(
        ConfigError,
        match=r"ddpm.unet: unknown key 'layer_per_block' \(did you mean 'layers_per_block'",
    ):
        resolve(DDPM, {"unet": {"layer_per_block": 1}}, "ddpm")
    with pytest.raises(ConfigError, match="rock: unknown key 'porosityy'"):
        merge_known({"porosity": 0.2}, {"porosityy": 0.3}, "rock")


def test_spelling_out_a_default_resolves_to_the_same_config() -> None:
    assert resolve(DDPM, {"lr": 5e-5, "ema": {"decay": 0.999}}, "ddpm") == resolve(DDPM, {}, "ddpm")
