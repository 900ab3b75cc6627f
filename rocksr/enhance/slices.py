"""One normalized slice through the model: :class:`SliceRunner` turns a uint8 slice into the
blended output of a deterministic model, or into sample 0 (and the mean and standard deviation
of K samples) of a DDPM, tiled as :class:`SliceSettings` says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rocksr.data.values import unit_to_uint8
from rocksr.enhance.blending import blend_deterministic, blend_float, tile_grid
from rocksr.enhance.fused import fused_sample, resolve_steps
from rocksr.inference import slice_sample_generator


@dataclass(frozen=True)
class Sampling:
    """How a DDPM samples, resolved once from the options and the checkpoint's config."""

    sampler: str
    steps: int
    prediction: str
    threshold: dict

    @classmethod
    def resolve(cls, cfg: dict, sampler: str, steps: int | None) -> Sampling:
        """The sampler's step count (:func:`resolve_steps`) and the checkpoint's prediction
        and thresholding (:func:`rocksr.diffusion.sampling.sampling_options`)."""
        from rocksr.diffusion.sampling import sampling_options

        n_steps = resolve_steps(sampler, steps, int(cfg["schedule"]["timesteps"]))
        return cls(sampler, n_steps, **sampling_options(cfg))

    def options(self) -> dict[str, Any]:
        """The keyword arguments ``prediction`` and ``threshold`` of the samplers."""
        return {"prediction": self.prediction, "threshold": self.threshold}


@dataclass(frozen=True)
class SliceSettings:
    """How every slice is tiled and, for a DDPM (``sampling`` not None), sampled."""

    tile: int
    overlap: int
    window: str
    batch_size: int
    device: torch.device
    sampling: Sampling | None = None
    fuse: str = "step"
    samples: int = 1
    seed: int = 0
    slice_noise: str = "shared"

    def generators(self, z: int) -> Iterator[torch.Generator]:
        """The generator of every sample of slice ``z``, in sample order, made one by one."""
        shared = self.slice_noise == "shared"
        for k in range(self.samples):
            yield slice_sample_generator(self.seed, k, None if shared else z)


def prior_slice(
    prior: Any, mct: torch.Tensor, img: np.ndarray, settings: SliceSettings
) -> torch.Tensor | None:
    """The whole slice's prior of a predict-and-refine DDPM (None without one): a pointwise
    prior on the whole slice at once, a network prior tiled and blended like a deterministic
    model (one tile: the prior that `predict` uses)."""
    if prior is None:
        return None
    if prior.pointwise:
        return prior(mct)
    s = settings
    p = blend_float(
        img, lambda b: prior(b), s.tile, s.overlap, s.batch_size, s.window, device=s.device
    )
    return torch.from_numpy(p)[None, None].to(s.device)


class SliceRunner:
    """One normalized slice in, ``{"pred", ["mean", "std"]}`` out, for any model kind."""

    def __init__(self, kind: str, model: Any, cfg: dict, settings: SliceSettings) -> None:
        from rocksr.inference import make_predictor

        self.kind, self.model, self.cfg, self.settings = kind, model, cfg, settings
        self.stochastic = settings.sampling is not None
        self.predictor = None if self.stochastic else make_predictor(kind, model, cfg)

    def n_tiles(self, h: int, w: int) -> int:
        """Tiles per ``h`` x ``w`` slice."""
        ys, xs = tile_grid(h, w, self.settings.tile, self.settings.overlap)
        return len(ys) * len(xs)

    def tile_calls(self, h: int, w: int) -> int:
        """Tile forward passes per slice (the progress bar's unit)."""
        s = self.settings
        per = s.samples * s.sampling.steps if s.sampling is not None else 1
        return self.n_tiles(h, w) * per

    def __call__(self, img: np.ndarray, z: int, on_batch: Callable[[int], Any]) -> dict:
        """The outputs of uint8 slice ``img`` (page/z index ``z``); ``on_batch(n)`` after
        every ``n`` tile forward passes."""
        s = self.settings
        if self.predictor is not None:
            predictor = self.predictor
            pred = blend_deterministic(
                img,
                lambda b: predictor(b, None),
                s.tile,
                s.overlap,
                s.batch_size,
                s.window,
                device=s.device,
                on_batch=on_batch,
            )
            return {"pred": pred}
        return self._sample(img, z, on_batch)

    def _sample(
        self, img: np.ndarray, z: int, on_batch: Callable[[int], Any]
    ) -> dict[str, np.ndarray]:
        """K samples of a DDPM: {"pred": uint8 sample 0, and for K > 1 "mean" uint8 and "std"
        float32, the population std in grey levels (0..255 scale)}."""
        from rocksr.data.predstore import RunningMoments

        s = self.settings
        fused = s.fuse == "step"
        draw = (self._fused_sampler if fused else self._tile_sampler)(img, on_batch)
        # float32 moments: two full-size buffers, 64 MB each for a 4096^2 slice
        moments = RunningMoments(np.float32) if s.samples > 1 else None
        pred = None
        for k, g in enumerate(s.generators(z)):
            xf = draw(g)
            if k == 0:
                pred = unit_to_uint8(xf)
            if moments is not None:
                moments.add(xf)
            del xf
        if moments is None:
            return {"pred": pred}
        std = (moments.std() * 127.5).astype(np.float32)
        return {"pred": pred, "mean": unit_to_uint8(moments.mean), "std": std}

    def _fused_sampler(
        self, img: np.ndarray, on_batch: Callable[[int], Any]
    ) -> Callable[[torch.Generator], np.ndarray]:
        """``fuse="step"``: one sample of the whole slice (:func:`fused_sample`), float32."""
        from rocksr.data.values import uint8_to_unit

        s, plan = self.settings, self.settings.sampling
        mct = torch.from_numpy(uint8_to_unit(img))[None, None].to(s.device)
        prior = prior_slice(getattr(self.model, "prior", None), mct, img, s)

        def draw(g: torch.Generator) -> np.ndarray:
            x = fused_sample(
                self.model,
                mct,
                self.cfg["schedule"],
                plan.sampler,
                plan.steps,
                g,
                tile=s.tile,
                overlap=s.overlap,
                window=s.window,
                batch_size=s.batch_size,
                on_batch=on_batch,
                prior=prior,
                **plan.options(),
            )
            return x[0, 0].float().cpu().numpy()

        return draw

    def _tile_sampler(
        self, img: np.ndarray, on_batch: Callable[[int], Any]
    ) -> Callable[[torch.Generator], np.ndarray]:
        """``fuse="end"``: every tile sampled on its own (as ``predict`` samples a batch, the
        tiles in batches drawing from one generator in tile order), then blended."""
        from rocksr.diffusion.sampling import sample

        s, plan, model = self.settings, self.settings.sampling, self.model
        prior = getattr(model, "prior", None)

        def sample_tiles(mct: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            p = None if prior is None else prior(mct)
            schedule = self.cfg["schedule"]
            return sample(
                model, mct, schedule, plan.sampler, plan.steps, g, prior=p, **plan.options()
            )

        def draw(g: torch.Generator) -> np.ndarray:
            return blend_float(
                img,
                lambda b: sample_tiles(b, g),
                s.tile,
                s.overlap,
                s.batch_size,
                s.window,
                device=s.device,
                on_batch=lambda n: on_batch(n * plan.steps),
            )

        return draw
