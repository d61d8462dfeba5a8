"""clients/python installs as its own package, needing httpx and nothing of the server."""

from __future__ import annotations

import os
import subprocess
import sys
from email.parser import Parser
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "python"


@pytest.mark.slow
def test_pip_install_pulls_in_httpx_only_and_imports_no_tensorflow(tmp_path: Path) -> None:
    target = tmp_path / "site"
    # Offline and without dependencies: what the package itself declares and ships.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(PACKAGE)],
        check=True,
        cwd=tmp_path,
    )  # fmt: skip
    (dist,) = target.glob("textcls_client-*.dist-info")
    meta = Parser().parsestr((dist / "METADATA").read_text())
    assert meta["Name"] == "textcls-client"
    assert meta.get_all("Requires-Dist") == ["httpx<1,>=0.27"]
    assert (target / "textcls_client" / "py.typed").exists()
    assert not (target / "app").exists() and not (target / "training").exists()
    # The installed copy imports with no TensorFlow and none of the server's modules loaded.
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import sys, textcls_client; "
        "assert textcls_client.__file__.startswith(sys.argv[1]), textcls_client.__file__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'app', 'numpy')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=True, env=env, cwd=tmp_path)
