"""The package modules a workflow script runs: what it imports and calls, read from the source.

A rule names these files as inputs, so that editing any module its job runs reruns the job (and
what follows), and editing a module the job never runs does not. The source is read with
:mod:`ast`, never executed: the workflow computes the files at parse time without importing
torch.

What a script runs, followed through the package at the level of top-level names:

- a module it imports: the module's import-time code (every top-level statement but the bodies
  of functions and classes), and before it the ``__init__.py`` of each package above it;
- a function or class it refers to (``from m import f``, ``m.f``): that function's or class's
  body, including the modules it imports lazily inside, and whatever the body refers to;
- a name the import-time code refers to (a registry ``{"name": function}``): its body as well,
  since whoever reads the registry may call it;
- a module used as a value (``import m`` then ``g(m)``), or imported inside a function: all of it.

``if TYPE_CHECKING:`` blocks never run and are skipped. Modules imported by a computed name
(``importlib.import_module(f"...{name}")``, or a pickle's classes) cannot be read from the
source: the rule names them itself (``extra``), as the generator rules do with the generator's
module. The result is a superset of what a job runs, never less (a reference is not a call).
"""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

PACKAGE = "causalmixft"
ALL = "*"  # every function and class of a module


@dataclass
class Scan:
    """Imports and name references of some code: references are dotted chains (``m.f`` -> ("m", "f"))."""

    imports: list[ast.Import | ast.ImportFrom] = field(default_factory=list)
    references: set[tuple[str, ...]] = field(default_factory=set)


@dataclass
class ModuleSource:
    """What one module's top level binds and runs."""

    name: str | None  # dotted name; None for a script outside the package
    is_package: bool
    import_time: Scan  # top-level code that runs on import
    bodies: dict[str, Scan]  # function or class name -> its body
    bindings: dict[str, tuple[str, ...]]  # top-level name -> ("module", m) or ("from", m, attr)


def read_module(path: str | os.PathLike, name: str | None = None) -> ModuleSource:
    """Parse ``path`` (cached while the file is unchanged); ``name`` resolves relative imports."""
    path = Path(path)
    stat = path.stat()
    return _read_module(str(path), stat.st_mtime_ns, stat.st_size, name)


@functools.lru_cache(maxsize=None)
def _read_module(path: str, mtime_ns: int, size: int, name: str | None) -> ModuleSource:
    tree = ast.parse(Path(path).read_text(), filename=path)
    source = ModuleSource(name, Path(path).name == "__init__.py", Scan(), {}, {})
    top_level: list[ast.AST] = []
    for statement in _runtime_statements(tree.body):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            source.bodies[statement.name] = _scan(statement.body)
            # decorators, default values and base classes run at import time
            top_level += [node for node in ast.iter_child_nodes(statement) if node not in statement.body]
        else:
            top_level.append(statement)
    source.import_time = _scan(top_level)
    for node in source.import_time.imports:
        for alias in node.names:
            if isinstance(node, ast.Import):
                bound = alias.asname or alias.name.split(".")[0]
                source.bindings[bound] = ("module", alias.name if alias.asname else bound)
            elif alias.name != "*":
                source.bindings[alias.asname or alias.name] = ("from", _absolute(node, source, path), alias.name)
    for node in source.import_time.imports + [n for body in source.bodies.values() for n in body.imports]:
        if isinstance(node, ast.ImportFrom):
            node.module = _absolute(node, source, path)  # resolved once, for the walk
            node.level = 0
    return source


def _runtime_statements(statements: list[ast.stmt]) -> list[ast.stmt]:
    """Top-level statements with the bodies of ``if TYPE_CHECKING:`` dropped (they never run)."""
    kept: list[ast.stmt] = []
    for statement in statements:
        if isinstance(statement, ast.If) and _is_type_checking(statement.test):
            kept += _runtime_statements(statement.orelse)
        else:
            kept.append(statement)
    return kept


def _scan(nodes: Iterable[ast.AST]) -> Scan:
    scan = Scan()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.append(node.test)
            stack += node.orelse
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            scan.imports.append(node)
        elif isinstance(node, (ast.Name, ast.Attribute)) and _chain(node):
            scan.references.add(_chain(node))
        else:
            stack += ast.iter_child_nodes(node)
    return scan


def _chain(node: ast.AST) -> tuple[str, ...] | None:
    """``a.b.c`` as ("a", "b", "c"); None for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id, *reversed(parts)) if isinstance(node, ast.Name) else None


def _is_type_checking(test: ast.expr) -> bool:
    return _chain(test) in {("TYPE_CHECKING",), ("typing", "TYPE_CHECKING")}


def _absolute(node: ast.ImportFrom, source: ModuleSource, path: str) -> str:
    if not node.level:
        return node.module or ""
    if source.name is None:
        raise ValueError(f"{path}: relative import in a file outside the package")
    parts = source.name.split(".")[: None if source.is_package else -1]
    if node.level - 1 >= len(parts):
        raise ValueError(f"{path}: relative import beyond the top-level package")
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def module_file(name: str, src: str | os.PathLike) -> Path | None:
    """The file of module ``name`` under ``src`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = Path(src).joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


class _Walk:
    """The reachability walk over (module, top-level name) pairs of one package."""

    def __init__(self, src: Path, package: str):
        self.src, self.package = src, package
        self.files: dict[str, Path] = {}
        self.seen: set[tuple[str, str | None]] = set()

    def module(self, name: str) -> ModuleSource | None:
        if not (name == self.package or name.startswith(self.package + ".")):
            return None
        file = module_file(name, self.src)
        return None if file is None else read_module(file, name)

    def visit(self, name: str, member: str | None = None) -> None:
        """Run module ``name``'s import-time code, then ``member`` of it (a name or ALL)."""
        if (name, member) in self.seen or self.module(name) is None:
            return
        self.seen.add((name, member))
        source = self.module(name)
        if member is None:
            parts = name.split(".")
            for depth in range(1, len(parts)):
                self.visit(".".join(parts[:depth]))
            self.files[name] = module_file(name, self.src)
            self.run(source, source.import_time, lazy=False)
            return
        self.visit(name)
        members = list(source.bodies) if member == ALL else [member]
        for item in members:
            if item in source.bodies:
                self.run(source, source.bodies[item], lazy=True)
            elif item in source.bindings:
                self.resolve(source, (item,))

    def run(self, source: ModuleSource, scan: Scan, lazy: bool) -> None:
        """Follow what ``scan`` imports and refers to, in ``source``'s namespace."""
        for node in scan.imports:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.visit(alias.name, ALL if lazy else None)
                continue
            self.visit(node.module)
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if alias.name == "*" or (lazy and self.module(submodule) is None):
                    self.visit(node.module, ALL if alias.name == "*" else alias.name)
                else:
                    self.visit(submodule, ALL if lazy else None)
        for reference in scan.references:
            self.resolve(source, reference)

    def resolve(self, source: ModuleSource, reference: tuple[str, ...]) -> None:
        head, rest = reference[0], reference[1:]
        if head in source.bodies and source.name is not None:
            self.visit(source.name, head)
            return
        binding = source.bindings.get(head)
        if binding is None:
            return  # a local, a builtin, or a name of the script itself (run in full)
        if binding[0] == "from":
            module, attribute = binding[1], binding[2]
            if self.module(f"{module}.{attribute}") is None:
                self.visit(module, attribute)
                return
            target = f"{module}.{attribute}"
        else:
            target = binding[1]
        while rest and self.module(f"{target}.{rest[0]}") is not None:  # a.b.c: the deepest module
            target, rest = f"{target}.{rest[0]}", rest[1:]
        self.visit(target, rest[0] if rest else ALL)


def package_modules(
    script: str | os.PathLike, src: str | os.PathLike, extra: Iterable[str] = (), package: str = PACKAGE
) -> list[Path]:
    """Files of the ``package`` modules that ``script`` runs (all of its own code counts), plus
    all of each ``extra`` module (dotted names the script reaches by a computed name)."""
    walk = _Walk(Path(src), package)
    script_source = read_module(script)
    walk.run(script_source, script_source.import_time, lazy=False)
    for body in script_source.bodies.values():
        walk.run(script_source, body, lazy=True)
    for name in extra:
        if walk.module(name) is None:
            raise ValueError(f"{name} is not a module of {package} under {src}")
        walk.visit(name, ALL)
    return sorted(walk.files.values())


def script_modules(
    script: str | os.PathLike, src: str | os.PathLike, extra: Iterable[str] = (), package: str = PACKAGE
) -> list[str]:
    """:func:`package_modules` as strings: a rule's code inputs."""
    return [str(path) for path in package_modules(script, src, extra, package)]


def imported_modules(name: str, src: str | os.PathLike, package: str = PACKAGE) -> set[str]:
    """The ``package`` modules that module ``name`` imports anywhere it may run (also inside
    functions, not under ``if TYPE_CHECKING:``): the edges of the package's import graph."""
    walk = _Walk(Path(src), package)
    source = walk.module(name)
    if source is None:
        raise ValueError(f"{name} is not a module of {package} under {src}")
    found: set[str] = set()
    for scan in [source.import_time, *source.bodies.values()]:
        for node in scan.imports:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if walk.module(submodule) is not None else node.module)
    return {module for module in found if walk.module(module) is not None}
