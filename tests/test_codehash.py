"""Code hashes from import closures (rocksr.codehash), on a throw-away package."""

from __future__ import annotations

from pathlib import Path

import pytest

from rocksr import codehash


@pytest.fixture
def pkg(tmp_path, monkeypatch) -> Path:
    """rocksr-like package: stages.a imports x (top level), x imports y inside a function,
    stages.b imports nothing of its own; z is imported by nobody."""
    root = tmp_path / "rocksr"
    (root / "stages").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "stages" / "__init__.py").write_text("")
    (root / "stages" / "a.py").write_text("from rocksr import x\n")
    (root / "stages" / "b.py").write_text("import json\n")
    (root / "x.py").write_text("def f():\n    from rocksr.y import g\n    return g\n")
    (root / "y.py").write_text("def g():\n    return 1\n")
    (root / "z.py").write_text("")
    monkeypatch.setattr(codehash, "PACKAGE_ROOT", root)
    codehash.forget_sources()
    yield root
    codehash.forget_sources()


def _hash(stage: str) -> str:
    codehash.forget_sources()
    return codehash.stage_hash(stage)


def test_closure_follows_function_level_and_submodule_imports(pkg) -> None:
    assert codehash.import_closure("rocksr.stages.a") == (
        "rocksr",
        "rocksr.stages",
        "rocksr.stages.a",
        "rocksr.x",
        "rocksr.y",
    )


def test_a_module_imported_only_indirectly_changes_the_stage_hash(pkg) -> None:
    a, b = _hash("a"), _hash("b")
    (pkg / "y.py").write_text("def g():\n    return 2\n")
    assert _hash("a") != a  # y is imported by x, inside a function
    assert _hash("b") == b  # b never imports y
    (pkg / "z.py").write_text("# edited\n")
    assert _hash("a") == _hash("a") and _hash("b") == b


def test_unknown_module_is_an_error(pkg) -> None:
    with pytest.raises(ValueError, match="no source for module"):
        codehash.import_closure("rocksr.stages.missing")


def test_real_stages_keep_figures_out_of_training() -> None:
    codehash.forget_sources()
    train = set(codehash.import_closure("rocksr.stages.train"))
    cgan = train | set(codehash.import_closure("rocksr.kinds.cgan"))
    ddpm = train | set(codehash.import_closure("rocksr.kinds.ddpm"))
    assert not {m for m in cgan | ddpm if m.startswith("rocksr.figures")}
    assert codehash.kind_hash("train", "cgan") != codehash.kind_hash("train", "ddpm")
    assert "rocksr.models.unet" in ddpm and "rocksr.models.unet" not in cgan
    assert "rocksr.models.cgan" in cgan and "rocksr.models.cgan" not in ddpm


def test_training_does_not_depend_on_image_reading_or_masks() -> None:
    """Tuning the field-of-view finder or an image reader's message must not retrain: the tile
    geometry training imports keeps its own rectangle test (rocksr.data.tiling)."""
    from rocksr.codehash import import_closure

    for stage in ("train", "predict", "evaluate", "split"):
        closure = set(import_closure(f"rocksr.stages.{stage}"))
        assert not closure & {"rocksr.data.masks", "rocksr.data.images", "rocksr.data.registration"}
