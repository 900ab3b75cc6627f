"""Code hashes from import closures (rocksr.codehash), on a throw-away package."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
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
    monkeypatch.setenv(codehash.IMPORTS_CACHE_ENV, str(tmp_path / "imports.json"))
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


def _imports_by_walking_everything(source: str, name: str, is_pkg: bool) -> set[str]:
    """The reference: every Import/ImportFrom node of the whole tree."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".") if is_pkg else name.split(".")[:-1]
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found |= {mod, *(f"{mod}.{a.name}" for a in node.names)}
    return found


def test_imports_in_finds_every_import_of_the_real_package() -> None:
    """Only statements are visited: the same imports as a walk over every node, for every
    module of rocksr, and for imports nested in try/except, with, match, class and if blocks."""
    nested = (
        "try:\n    import a\nexcept ImportError:\n    import b\nelse:\n    import c\n"
        "finally:\n    import d\n"
        "with open(f) as g:\n    from . import e\n"
        "match x:\n    case 1:\n        from .. import f\n"
        "class K:\n    def m(self):\n        if y:\n            import h\n"
        "        else:\n            import i\n"
        "lambda: __import__('j')\n"
        "try:\n    pass\nexcept* ValueError:\n    import k\n"
        "async def co():\n    async with a:\n        import m\n"
        "    async for x in y:\n        import n\n    else:\n        import o\n"
        "while z:\n    import r\nelse:\n    import s\n"
        "for t in u:\n    pass\nelse:\n    import v\n"
    )
    got = codehash.imports_in(nested, "rocksr.p.q", False)
    assert got == _imports_by_walking_everything(nested, "rocksr.p.q", False)
    assert {"a", "b", "c", "d", "rocksr.p.e", "rocksr.f", "h", "i", "k", "m", "n", "o"} <= got
    assert {"r", "s", "v"} <= got
    root = codehash.PACKAGE_ROOT
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_pkg = path.name == "__init__.py"
        name = ".".join(rel.parts[:-1] if is_pkg else rel.parts)
        src = path.read_text()
        assert codehash.imports_in(src, name, is_pkg) == _imports_by_walking_everything(
            src, name, is_pkg
        ), path


def test_the_imports_cache_spares_parsing_and_never_hides_an_edit(pkg, monkeypatch) -> None:
    closure = codehash.import_closure("rocksr.stages.a")
    codehash.write_imports_cache()
    cache_file = Path(os.environ[codehash.IMPORTS_CACHE_ENV])
    assert len(json.loads(cache_file.read_text())) == 5  # the 5 sources read
    codehash.forget_sources()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed a source that the cache knows")

    parse = codehash.imports_in
    monkeypatch.setattr(codehash, "imports_in", no_parse)
    assert codehash.import_closure("rocksr.stages.a") == closure  # from the file alone
    (pkg / "y.py").write_text("from rocksr import z\n")  # new bytes: parsed again
    codehash.forget_sources()
    with pytest.raises(AssertionError, match="parsed a source"):
        codehash.import_closure("rocksr.stages.a")
    monkeypatch.setattr(codehash, "imports_in", parse)
    codehash.forget_sources()
    assert codehash.import_closure("rocksr.stages.a") == (*closure, "rocksr.z")
    # entries written by another version of this module are not used
    codehash.write_imports_cache()
    monkeypatch.setattr(codehash, "_PARSER", "another-parser")
    monkeypatch.setattr(codehash, "imports_in", no_parse)
    codehash.forget_sources()
    with pytest.raises(AssertionError, match="parsed a source"):
        codehash.import_closure("rocksr.stages.a")


def test_a_damaged_or_unusable_imports_cache_is_ignored(pkg, tmp_path, monkeypatch) -> None:
    closure = codehash.import_closure("rocksr.stages.a")
    codehash.write_imports_cache()
    cache_file = Path(os.environ[codehash.IMPORTS_CACHE_ENV])
    # entries of the wrong type, then a file that is not JSON: parsed again, same closure
    entries = json.loads(cache_file.read_text())
    cache_file.write_text(json.dumps(dict.fromkeys(entries, 5)))
    codehash.forget_sources()
    assert codehash.import_closure("rocksr.stages.a") == closure
    cache_file.write_text("{not json")
    codehash.forget_sources()
    assert codehash.import_closure("rocksr.stages.a") == closure
    codehash.write_imports_cache()
    assert len(json.loads(cache_file.read_text())) == 5  # rewritten whole
    # a cache where no file can be written (its folder is a file), and no cache at all
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    for value in (str(blocker / "imports.json"), ""):
        monkeypatch.setenv(codehash.IMPORTS_CACHE_ENV, value)
        codehash.forget_sources()
        assert codehash.import_closure("rocksr.stages.a") == closure
        codehash.write_imports_cache()
    assert codehash.imports_cache_path() is None
    # no cache folder to be found (no XDG_CACHE_HOME, no home): no cache, hashes as before
    monkeypatch.delenv(codehash.IMPORTS_CACHE_ENV)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(codehash.Path, "home", staticmethod(no_home))
    assert codehash.imports_cache_path() is None
    codehash.forget_sources()
    assert codehash.import_closure("rocksr.stages.a") == closure
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "imports.json", "rocksr"]


def test_a_process_leaves_what_it_parsed_in_the_imports_cache(tmp_path) -> None:
    """Written at the process's exit: the next Snakemake start reads the file instead."""
    cache_file = tmp_path / "cache" / "imports.json"
    code = "from rocksr import codehash; codehash.stage_hash('train')"
    env = {**os.environ, codehash.IMPORTS_CACHE_ENV: str(cache_file)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    names = {key.split(":")[1] for key in json.loads(cache_file.read_text())}
    assert "rocksr.stages.train" in names and "rocksr/" in names
