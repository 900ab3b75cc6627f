"""Code versions for Snakemake: the hash of a module's import closure inside ``rocksr``.

Each rule's ``code`` param is :func:`stage_hash` of its stage module (``rocksr.stages.<rule>``),
or, for a rule that runs one model kind, :func:`kind_hash` of the stage and the kind's module
(the registry loads kinds by name, which no import statement shows), so a change re-runs exactly
the stages whose code it touches: the closure is found by reading
the source (every ``import`` statement, at module level or inside functions), never from a
hand-written list, and includes the ``__init__`` of every package on the way.

Parsing the package's sources is most of that work (about 0.3 s at every Snakemake start), so
what each source imports is kept on disk, keyed by the module's name and the SHA-256 of its
bytes (:func:`imports_cache_path`): an edited file is parsed again, an unchanged one never.
"""

from __future__ import annotations

import ast
import atexit
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = PACKAGE_ROOT.name

# what each source imports, by module name and content hash: ROCKSR_IMPORTS_CACHE, else
# $XDG_CACHE_HOME/rocksr/imports.json (~/.cache/...); "" turns the cache off. A cache that
# cannot be read or written is ignored: the sources are then parsed, as without it.
IMPORTS_CACHE_ENV = "ROCKSR_IMPORTS_CACHE"
IMPORTS_CACHE_ENTRIES = 2000  # the most recently written ones kept (about 150 per package version)
# entries are also keyed by this module's own source, so a change to how imports are read
# never meets entries read the old way
_PARSER = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def imports_cache_path() -> Path | None:
    """The file of the imports cache, or None when ``ROCKSR_IMPORTS_CACHE`` is empty."""
    value = os.environ.get(IMPORTS_CACHE_ENV)
    if value is not None:
        return Path(value) if value else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = Path.home() / ".cache"
        except (RuntimeError, KeyError):  # no HOME and a uid without a passwd entry
            return None
    return Path(base) / "rocksr" / "imports.json"


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
    source is read once per process while its size and modification time stay the same, and
    parsed only when the imports cache does not know its bytes)."""
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
    source = path.read_bytes()
    is_pkg = path.name == "__init__.py"
    key = f"{_PARSER}:{name}{'/' if is_pkg else ''}:{hashlib.sha256(source).hexdigest()}"
    cache = _imports_cache()
    cached = cache.entries.get(key)
    if isinstance(cached, list) and all(isinstance(m, str) for m in cached):
        return frozenset(cached)
    found = imports_in(source, name, is_pkg, filename=str(path))
    cache.add(key, sorted(found))
    return frozenset(found)


def imports_in(
    source: str | bytes, name: str, is_pkg: bool, filename: str = "<source>"
) -> set[str]:
    """Every dotted name that the source of module ``name`` imports, at module level or inside
    functions, relative imports resolved (``is_pkg``: the source is a package's ``__init__``)."""
    found: set[str] = set()
    for node in _statements(ast.parse(source, filename=filename)):
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
    return found


def _statements(node: ast.AST) -> Iterator[ast.stmt]:
    """Every statement under ``node``, in nested blocks too (``import`` is a statement, so the
    expressions, most of a tree's nodes, need not be visited)."""
    for _, value in ast.iter_fields(node):
        for item in value if isinstance(value, list) else ():
            if isinstance(item, ast.stmt):
                yield item
                yield from _statements(item)
            elif isinstance(item, ast.excepthandler | ast.match_case):
                yield from _statements(item)


class _ImportsCache:
    """The on-disk imports cache of this process: read once, written back at exit if grown."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.new = path, {}
        self.entries: dict[str, list[str]] = self._read() if path else {}

    def _read(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text())
        except Exception:  # unreadable, not JSON, nested too deep: as if there were none
            return {}
        return data if isinstance(data, dict) else {}

    def add(self, key: str, imports: list[str]) -> None:
        if self.path is not None:
            if not self.new:
                atexit.register(self.write)
            self.new[key] = imports
        self.entries[key] = imports

    def write(self) -> None:
        """Merge this process's new entries into the file (written whole, then renamed)."""
        if not self.new or self.path is None:
            return
        merged = {**self._read(), **self.new}
        keep = dict(list(merged.items())[-IMPORTS_CACHE_ENTRIES:])
        self.new = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".imports-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(keep, f)
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)


@cache
def _imports_cache() -> _ImportsCache:
    return _ImportsCache(imports_cache_path())


def write_imports_cache() -> None:
    """Write what this process has parsed to the imports cache now (else done at exit)."""
    _imports_cache().write()


def forget_sources() -> None:
    """Drop what this process has read of the sources (for a caller that edits them)."""
    _imports_in_source.cache_clear()
    _rocksr_imports.cache_clear()
    _module_file.cache_clear()
    import_closure.cache_clear()
    _imports_cache.cache_clear()


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
