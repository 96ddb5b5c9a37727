"""The third-party modules a workflow script imports, directly or through the mskdx modules it uses.

`third_party_imports(script)` reads the code, never runs it; tests/unit/test_envs.py checks each
rule's conda env against what the rule's script imports.

What runs is followed at the level of names: importing a module runs its top-level imports;
calling one of its functions also runs the imports inside that function (mskdx.learn.gradcam
imports torch only inside the Grad-CAM job, so the localisation summary need not have torch). A
module used as a whole (`from mskdx.learn import train`, then `train.f`) is followed through the
attributes used.
Imports under `if TYPE_CHECKING:` and optional ones (`try: import x / except ImportError`) are
left out.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
# Imported, but provided by Snakemake itself (the `snakemake` object in scripts)
PROVIDED = {"snakemake"}


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name ("" for `from . import x` before resolution)
    names: tuple[str, ...]  # for `from module import names`; () for `import module`
    level: int
    bound: str | None  # the name it binds, for `import a.b` without `as`: None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _guards_import_error(handler: ast.ExceptHandler) -> bool:
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = {t.id for t in types if isinstance(t, ast.Name)}
    return bool({"ImportError", "ModuleNotFoundError"} & names)


def _scan(nodes: list[ast.AST], *, into_defs: bool) -> tuple[list[Import], set[str]]:
    """Imports that run and names referenced in `nodes` (not under TYPE_CHECKING, not optional
    `try: import x / except ImportError`); function and class bodies only if `into_defs`."""
    imports: list[Import] = []
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Try) and any(_guards_import_error(h) for h in node.handlers):
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child)
            return
        if not into_defs and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            for child in [*node.decorator_list, *getattr(node, "bases", [])]:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or (None if "." in alias.name else alias.name)
                imports.append(Import(alias.name, (), 0, bound))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                imports.append(
                    Import(node.module or "", (alias.name,), node.level, alias.asname or alias.name)
                )
        elif isinstance(node, ast.Name):
            names.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for node in nodes:
        visit(node)
    return imports, names


@dataclass
class ModuleInfo:
    path: Path
    package: str | None  # dotted package for relative imports; None for a script
    tree: ast.Module
    defs: dict[str, ast.AST]
    attributes: dict[str, set[str] | None]  # name -> attributes used on it; None: used bare


@cache
def module_info(path: Path, package: str | None) -> ModuleInfo:
    tree = ast.parse(path.read_text(), filename=str(path))
    defs = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    attributes: dict[str, set[str] | None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            used = attributes.setdefault(node.value.id, set())
            if used is not None:
                used.add(node.attr)
    attribute_values = {
        id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in attribute_values:
            if isinstance(node.ctx, ast.Load):
                attributes[node.id] = None
    return ModuleInfo(path, package, tree, defs, attributes)


def _module_file(dotted: str) -> Path | None:
    """src/mskdx/a/b.py or src/mskdx/a/b/__init__.py for 'mskdx.a.b'."""
    base = SRC.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str:
    """Dotted package of a file in src/ (for a/__init__.py: package a itself)."""
    return ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])


def third_party_imports(script: Path) -> dict[str, list[str]]:
    """Top-level third-party module -> the files (script or mskdx modules) that import it."""
    return _follow(script)[0]


def library_files(script: Path) -> set[Path]:
    """The files of src/mskdx whose code runs when the script runs (modules and their packages'
    `__init__.py`), as followed by `third_party_imports`."""
    return {path for path in _follow(script)[1] if path.is_relative_to(SRC)}


def _follow(script: Path) -> tuple[dict[str, list[str]], set[Path]]:
    """What the script runs: third-party imports by module, and the files visited."""
    result: dict[str, list[str]] = {}
    # units of code that run: (file, package, what) with what = "<top>", "*" or a def's name
    todo: list[tuple[Path, str | None, str]] = [(script, None, "*")]
    seen: set[tuple[Path, str]] = set()

    def follow_module(dotted: str, what: str) -> None:
        parts = dotted.split(".")
        for i in range(1, len(parts)):  # parent packages run their __init__
            parent = _module_file(".".join(parts[:i]))
            if parent is not None:
                todo.append((parent, _package_of(parent), "<top>"))
        file = _module_file(dotted)
        if file is not None:
            todo.append((file, _package_of(file), "<top>"))
            if what != "<top>":
                todo.append((file, _package_of(file), what))

    while todo:
        path, package, what = todo.pop()
        if (path, what) in seen:
            continue
        seen.add((path, what))
        info = module_info(path, package)
        if what == "*":
            imports, referenced = _scan(info.tree.body, into_defs=True)
        elif what == "<top>":
            imports, referenced = _scan(info.tree.body, into_defs=False)
        elif what in info.defs:
            imports, referenced = _scan([info.defs[what]], into_defs=True)
        else:
            continue  # a name the module got by import: followed from that import
        for name in referenced & set(info.defs):
            todo.append((path, package, name))
        where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        for imp in imports:
            module = imp.module
            if imp.level:
                if package is None:
                    continue  # a relative import in a script: nothing conda provides
                base = package.split(".")
                base = base[: len(base) - (imp.level - 1)]
                module = ".".join([*base, module] if module else base)
            top = module.split(".")[0]
            if top != "mskdx":
                if top and top not in sys.stdlib_module_names and top not in PROVIDED:
                    result.setdefault(top, []).append(where)
                continue
            used = info.attributes.get(imp.bound) if imp.bound else None
            if imp.names:
                (name,) = imp.names
                if _module_file(f"{module}.{name}") is not None:  # a submodule
                    attrs = used if used is not None else {"*"}
                    for attr in attrs:
                        follow_module(f"{module}.{name}", attr)
                else:
                    follow_module(module, name)
            else:
                attrs = used if (imp.bound and used is not None) else {"*"}
                for attr in attrs:
                    follow_module(module, attr)
    return result, {path for path, _ in seen}
