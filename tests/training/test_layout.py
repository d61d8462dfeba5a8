"""training/'s shape, held by walking its files: small modules and functions, a settings
object instead of long parameter lists, imports one way (stages never import the run that
calls them; nothing in training imports app), and the stage list in one screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.app.test_layout import _imports, _under

TRAINING = Path(__file__).resolve().parents[2] / "training"
MODULE_MAX_LINES = 350
FUNCTION_MAX_LINES = 60
PARAMETERS_MAX = 5  # more: pass a settings object (TrainConfig, FitInput, RetrainJob)
# Functions a concurrent change owns (the fallback margin, the report's fonts and titles):
# they are split after it lands; a new entry here needs the same reason.
PENDING = {
    "training.calibration.append_quality_report",
    "training.report.render_markdown",
    "training.report.write_report",
}
# Only the run itself and retraining (which runs it) import the stages or the run.
RUNNERS = {
    "training.stages": ("training.train", "training.retrain"),
    "training.train": ("training.retrain",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(TRAINING.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted((_module_name(p), p) for p in TRAINING.rglob("*.py"))


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_modules_and_functions_stay_small(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MODULE_MAX_LINES, f"{module} has {lines} lines; split it by its parts"
    for fn in _functions(path):
        if f"{module}.{fn.name}" in PENDING:
            continue
        length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
        assert length <= FUNCTION_MAX_LINES, f"{module}.{fn.name} has {length} lines"
        a = fn.args
        params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg != "self"]
        params = [p for p in params if p != "cls"]
        assert len(params) <= PARAMETERS_MAX, f"{module}.{fn.name}{tuple(params)}"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_one_way(module: str, path: Path) -> None:
    imported = _imports(path)
    app = sorted(n for n in imported if _under(n, ("app",)))
    assert not app, f"{module} imports the service: {app}"
    for target, allowed in RUNNERS.items():
        if _under(module, (target,)) or _under(module, allowed):
            continue
        bad = sorted(n for n in imported if _under(n, (target,)))
        assert not bad, f"{module} imports {bad}; only {allowed} may"


def test_the_stage_list_is_in_one_screen() -> None:
    """training/__init__.py names every stage module, in a docstring of one screen."""
    doc = ast.get_docstring(ast.parse((TRAINING / "__init__.py").read_text(encoding="utf-8")))
    assert doc and len(doc.splitlines()) <= 40
    stages = [p.stem for p in (TRAINING / "stages").glob("*.py") if p.stem != "__init__"]
    missing = [s for s in stages if f"stages/{s}.py" not in doc]
    assert not missing, f"training/__init__.py does not name {missing}"


def test_the_checker_sees_a_long_parameter_list(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(a, b, c, d, e, *, g):\n    return a\n")
    (fn,) = _functions(bad)
    assert len(fn.args.args + fn.args.kwonlyargs) > PARAMETERS_MAX
