"""The model kinds rocksr trains and applies: one :class:`ModelKind` entry per kind.

A kind is one module ``rocksr.kinds.<name>`` that defines ``KIND = ModelKind(...)``: its config
section, whether it draws samples, its training task, its networks, how a checkpoint becomes an
inference network and a predictor.  Everything else (the workflow's rules, the CLI choices,
``predict``, Table 1, ``rocksr enhance``) iterates over :func:`kind_names` and asks the entry;
nothing compares kind names.  Adding a kind is one module plus one config section.

This module imports no torch: the Snakefile and ``rocksr --help`` read it.  Kind modules are
imported by name (:func:`get_kind`), so a stage's static import closure does not contain every
kind; a rule that runs one kind hashes the stage *and* that kind's module
(:func:`rocksr.codehash.kind_hash`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# the built-in kinds, in the order of every table, figure and rule
BUILTIN_KINDS: tuple[str, ...] = ("cgan", "regress", "ddpm")
KIND_PACKAGE = "rocksr.kinds"

# a predictor: f(mct (B,1,S,S) in [-1, 1], torch.Generator | None) -> (B,1,S,S) in [-1, 1]
Predictor = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class ModelKind:
    """One model kind.

    ``build(cfg)``: ``{name: nn.Module}`` of a resolved config section; ``arch(cfg)``: the config
    values that fix the networks (checked on resume and at inference); ``task()``: the training
    task class (see :mod:`rocksr.training.trainer`); ``inference(ckpt, cfg, device, path)``: the
    network that inference runs, in eval mode on ``device``, from the checkpoint loaded from
    ``path`` (``cfg`` may be completed in place); ``predictor(model, cfg, sampler, steps)``: a :data:`Predictor`.
    ``stochastic`` kinds draw K samples per tile (sampler and steps apply); deterministic kinds
    are called once.  ``tile_multiple(cfg)``: tile sizes must be multiples of it.
    ``curves``: the loss-curve panels, ``(title, train columns, validation columns)``.
    ``inference_networks``: the networks counted as the model's inference parameters.
    """

    name: str
    description: str
    section: type
    stochastic: bool
    build: Callable[[dict], dict]
    arch: Callable[[dict], dict]
    task: Callable[[], type]
    inference: Callable[[dict, dict, str, Any], Any]
    predictor: Callable[..., Predictor]
    tile_multiple: Callable[[dict], int] = lambda cfg: 1
    curves: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    inference_networks: tuple[str, ...] = field(default_factory=tuple)
    log_loss: bool = False
    # whole-slice defaults of `rocksr enhance` when the user sets none: overlap as a fraction
    # of the tile, and the blending window
    enhance_overlap: float = 0.5
    enhance_window: str = "gaussian"


_REGISTERED: dict[str, ModelKind] = {}


def register(kind: ModelKind) -> None:
    """Add (or replace) a kind at run time, e.g. a plug-in or a test's toy kind."""
    _REGISTERED[kind.name] = kind


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """Every kind: the built-in ones, then those registered at run time."""
    return BUILTIN_KINDS + tuple(k for k in _REGISTERED if k not in BUILTIN_KINDS)


def kind_module(name: str) -> str:
    """The module that defines a built-in kind (what a rule of that kind hashes)."""
    return f"{KIND_PACKAGE}.{name}"


def unknown_kind_message(name: object) -> str:
    names = kind_names()
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown model kind {name!r} (one of {', '.join(names)}){hint}"


def get_kind(name: str) -> ModelKind:
    """The entry of kind ``name``; a ValueError naming the known kinds otherwise."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in BUILTIN_KINDS:
        raise ValueError(unknown_kind_message(name))
    return importlib.import_module(kind_module(name)).KIND


def load_network(net: Any, ckpt: dict, key: str, device: str) -> Any:
    """``net`` with the checkpoint's weights of ``key`` (its EMA weights when it has them), in
    eval mode on ``device``: the inference network of a kind."""
    ema = ckpt.get("ema")
    net.load_state_dict(ema["module"] if ema else ckpt["models"][key])
    return net.to(device).eval()


def deterministic_predictor(model: Any) -> Predictor:
    """The :data:`Predictor` of a deterministic network: ``model(mct)`` clamped to [-1, 1]."""
    import torch

    @torch.no_grad()
    def run(mct: Any, generator: Any) -> Any:
        return model(mct).clamp(-1.0, 1.0)

    return run


def is_stochastic(name: str) -> bool:
    return get_kind(name).stochastic


def arch_signature(kind: str, cfg: dict) -> dict:
    """Config values that fix the network (and sampling maths); must match to resume."""
    return get_kind(kind).arch(cfg)


def build_models(kind: str, cfg: dict) -> dict:
    """The networks of ``kind`` built from a resolved config section."""
    return get_kind(kind).build(cfg)
