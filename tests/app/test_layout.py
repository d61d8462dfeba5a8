"""app/'s folders say what may import what (edge -> plane -> predlog, never back); this test
walks every module's imports, including those inside functions, and holds them to it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# What each part may import from the project (any module under these prefixes). The app
# factory and the commands at the top level may import everything.
ALLOWED: dict[str, tuple[str, ...]] = {
    "app.config": (),
    "app.errors": (),
    "app.metrics": (),
    "app.predlog": ("app.predlog", "app.config", "app.errors"),
    "app.plane": ("app.plane", "app.predlog", "app.config", "app.errors", "app.metrics"),
    "app.edge": (
        "app.edge",
        "app.plane",
        "app.predlog",
        "app.config",
        "app.errors",
        "app.metrics",
    ),
}
# The service imports no training code but the artifact contract (app.cli joins the two).
TRAINING_ALLOWED = ("training.artifact",)
TRAINING_EXEMPT = ("app.cli",)
# Transport libraries the data plane and the log must not need.
HTTP_LIBRARIES = ("fastapi", "starlette", "uvicorn", "httpx")
TOP_LEVEL_MAX = 8


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: use absolute imports, not relative ones")
    return names


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _part(module: str) -> str | None:
    return next((p for p in ALLOWED if _under(module, (p,))), None)


MODULES = sorted((_module_name(p), p) for p in APP.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_follow_the_folders(module: str, path: Path) -> None:
    imported = _imports(path)
    part = _part(module)
    if part is not None:
        project = {n for n in imported if _under(n, ("app",))}
        bad = sorted(n for n in project if not _under(n, ALLOWED[part]))
        assert not bad, f"{module} ({part}) may import only {ALLOWED[part]}; imports {bad}"
    if part in ("app.plane", "app.predlog", "app.config", "app.errors", "app.metrics"):
        http = sorted(n for n in imported if _under(n, HTTP_LIBRARIES))
        assert not http, f"{module} must know nothing of HTTP; imports {http}"
    if not _under(module, TRAINING_EXEMPT):
        training = sorted(n for n in imported if _under(n, ("training",)))
        bad_training = [n for n in training if not _under(n, TRAINING_ALLOWED)]
        assert not bad_training, f"{module} imports training code: {bad_training}"


def test_every_folder_says_its_job_and_what_it_may_import() -> None:
    for init in APP.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert doc, f"{init} has no docstring"
        if _module_name(init) in ALLOWED:
            assert "import" in doc, f"{init}'s docstring does not say what it may import"


def test_app_has_few_modules_at_its_top() -> None:
    top = [p.name for p in APP.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= TOP_LEVEL_MAX, sorted(top)


def test_the_checker_sees_a_wrong_way_import(tmp_path: Path) -> None:
    """The walk finds imports inside functions and names the rule they break."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from app.edge.auth import header\n    return header\n")
    imported = _imports(bad)
    assert "app.edge.auth" in imported
    assert not _under("app.edge.auth", ALLOWED["app.plane"])


MODULE_MAX_LINES = 310
FUNCTION_MAX_LINES = 60
POSITIONAL_MAX = 3


def _definitions(path: Path) -> list[ast.AST]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_modules_and_functions_stay_small(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MODULE_MAX_LINES, f"{module} has {lines} lines; split it by its parts"
    for fn in _definitions(path):
        assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
        assert length <= FUNCTION_MAX_LINES, f"{module}.{fn.name} has {length} lines"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_calls_of_more_than_three_arguments_name_them(module: str, path: Path) -> None:
    """Functions take at most three positional parameters (besides self), dataclasses of
    more than three fields are keyword-only: a call of many arguments says which is which."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args.posonlyargs + node.args.args
            positional = [a.arg for a in args if a.arg not in ("self", "cls")]
            assert len(positional) <= POSITIONAL_MAX, f"{module}.{node.name}({positional})"
        if isinstance(node, ast.ClassDef):
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any(d.startswith("dataclass") for d in decorators):
                fields = [b for b in node.body if isinstance(b, ast.AnnAssign)]
                if len(fields) > POSITIONAL_MAX:
                    assert any("kw_only=True" in d for d in decorators), f"{module}.{node.name}"
