"""Code versions for Snakemake: the hash of a module's import closure inside ``rocksr``.

Each rule's ``code`` param is :func:`stage_hash` of its stage module (``rocksr.stages.<rule>``),
or, for a rule that runs one model kind, :func:`kind_hash` of the stage and the kind's module
(the registry loads kinds by name, which no import statement shows), so a change re-runs exactly
the stages whose code it touches: the closure is found by reading
the source (every ``import`` statement, at module level or inside functions), never from a
hand-written list, and includes the ``__init__`` of every package on the way.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = PACKAGE_ROOT.name


def module_file(name: str, root: Path | None = None) -> Path | None:
    """The source file of ``rocksr.a.b`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    return _module_file(name, root or PACKAGE_ROOT)


@cache
def _module_file(name: str, root: Path) -> Path | None:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _packages(name: str) -> list[str]:
    """``rocksr.a.b`` -> ``["rocksr", "rocksr.a"]`` (whose ``__init__`` runs on import)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(path: Path, name: str) -> set[str]:
    """The ``rocksr`` modules that the source of module ``name`` at ``path`` imports (each
    source is parsed once per process while its size and modification time stay the same)."""
    stat = path.stat()
    return set(_rocksr_imports(path, name, (stat.st_mtime_ns, stat.st_size)))


@cache
def _rocksr_imports(path: Path, name: str, stamp: tuple[int, int]) -> frozenset[str]:
    out = set()
    for mod in _imports_in_source(path, name, stamp):
        if mod.split(".")[0] == PACKAGE and module_file(mod) is not None:
            out.add(mod)
            out.update(_packages(mod))
    return frozenset(out)


@cache
def _imports_in_source(path: Path, name: str, stamp: tuple[int, int]) -> frozenset[str]:
    """Every dotted name the source at ``path`` imports (``stamp``: its mtime and size)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from rocksr.data import splits` imports the submodule rocksr.data.splits
            found.update(f"{mod}.{a.name}" for a in node.names)
    return frozenset(found)


def forget_sources() -> None:
    """Drop what this process has read of the sources (for a caller that edits them)."""
    _imports_in_source.cache_clear()
    _rocksr_imports.cache_clear()
    _module_file.cache_clear()
    import_closure.cache_clear()


@cache
def import_closure(name: str) -> tuple[str, ...]:
    """Every ``rocksr`` module that importing ``name`` can run, ``name`` included (sorted)."""
    if module_file(name) is None:
        raise ValueError(f"no source for module {name!r} under {PACKAGE_ROOT}")
    seen = {name, *_packages(name)}
    todo = list(seen)
    while todo:
        mod = todo.pop()
        path = module_file(mod)
        if path is None:
            continue
        for dep in imported_modules(path, mod) - seen:
            seen.add(dep)
            todo.append(dep)
    return tuple(sorted(seen))


def code_hash(*names: str) -> str:
    """16 hex digits of SHA-256 over the relative paths and bytes of the union of the import
    closures of ``names``."""
    if not names:
        raise ValueError("code_hash: no module given")
    h = hashlib.sha256()
    for mod in sorted(set().union(*(import_closure(n) for n in names))):
        path = module_file(mod)
        assert path is not None
        h.update(str(path.relative_to(module_file(PACKAGE).parent)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def stage_hash(stage: str) -> str:
    """:func:`code_hash` of the stage module ``rocksr.stages.<stage>``."""
    return code_hash(f"{PACKAGE}.stages.{stage}")


def kind_hash(stage: str, *kinds: str) -> str:
    """:func:`code_hash` of the stage module and of the modules of the model ``kinds``
    (:mod:`rocksr.kinds`): the code a rule runs when its stage loads those kinds by name."""
    from rocksr.models.registry import kind_module

    return code_hash(f"{PACKAGE}.stages.{stage}", *(kind_module(k) for k in kinds))
