"""Which project code a script or module runs, found statically, and a digest of that code.

``import_closure`` follows ``import`` statements (anywhere in a file, so imports inside
functions count) transitively within the ``cxrsynth`` package. It is how the tests keep
each stage's DVC dependencies exact, and how a GAN checkpoint records the code that
trained it (``source_digest``, blind to comments and docstrings). Written here because
the standard library's ``modulefinder`` executes nothing but also follows every
third-party import, which is slow and not what a dependency list needs.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = "cxrsynth"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (``cxrsynth.data.store`` → .../data/store.py), or None."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(PACKAGE_DIR)
    except ValueError:
        return None  # a stage script, outside the package
    parts = [PACKAGE, *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imports_of(path: Path) -> tuple[str, ...]:
    """Project modules named by the import statements in ``path`` (packages on the way included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = _module_name(path)
    package = own if path.name == "__init__.py" else (own.rpartition(".")[0] if own else None)
    found: set[str] = set()

    def add(name: str) -> None:
        pieces = name.split(".")
        for i in range(1, len(pieces) + 1):  # importing a.b.c runs a, a.b and a.b.c
            prefix = ".".join(pieces[:i])
            if module_file(prefix) is not None:
                found.add(prefix)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                if package is None:
                    continue
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            add(base)
            for alias in node.names:  # ``from pkg import submodule``
                if module_file(f"{base}.{alias.name}") is not None:
                    add(f"{base}.{alias.name}")
    return tuple(sorted(found))


def is_code(path: Path) -> bool:
    """False for a package ``__init__.py`` that holds only a docstring (importing it runs nothing)."""
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return bool(body)


def import_closure(roots: Iterable[str | Path]) -> list[Path]:
    """Source files of every project module the roots import, transitively (roots included when
    they are project modules). A root is a file path (a stage script) or a module name.

    Package ``__init__.py`` files that hold only a docstring are left out: they run no code."""
    todo: list[Path] = []
    for root in roots:
        path = Path(root) if str(root).endswith(".py") else module_file(str(root))
        if path is None:
            raise ValueError(f"import_closure: {root!r} is neither a .py file nor a {PACKAGE} module")
        todo.append(path.resolve())
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(module_file(name).resolve() for name in _imports_of(path))
    return sorted(p for p in seen if _module_name(p) is not None and is_code(p))


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` without its bare string statements (docstrings, and strings left as comments)."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                        and isinstance(s.value.value, str))]
        node.body = kept if kept or isinstance(node, ast.Module) else [ast.Pass()]
    return tree


def normalised_source(path: Path) -> str:
    """The code of ``path`` without comments, docstrings, blank lines or layout: the parsed tree
    written back out (``ast.unparse``), so two files that differ only in those read the same.

    Bare string statements are dropped everywhere: they run nothing, and the code digested here
    never reads ``__doc__``. The form is Python's own, so another Python minor version may write
    it differently."""
    return ast.unparse(_strip_docstrings(ast.parse(path.read_text(), filename=str(path))))


def source_digest(files: Iterable[Path], root: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the files' paths (relative to ``root``, the package) and normalised code
    (``normalised_source``), in sorted order: an edit to a comment or a docstring keeps the digest."""
    digest = hashlib.sha256()
    for path in sorted(Path(f).resolve() for f in files):
        code = normalised_source(path).encode()
        digest.update(str(path.relative_to(root)).encode() + b"\0" + code + b"\0")
    return digest.hexdigest()
