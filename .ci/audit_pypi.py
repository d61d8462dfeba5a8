"""Vulnerability check of a pinned requirements file from PyPI's project JSON (no pip-audit).

The fallback of .ci/audit.sh for networks where pip-audit's sources (PyPI's per-version
JSON, OSV) cannot be reached but the project pages can: ``/pypi/<name>/json`` lists the
known vulnerabilities (OSV/PYSEC/GHSA ids) of the newest release. So a package pinned at the
newest release is checked completely; one pinned below it cannot be checked here and is
reported as unverified: "no finding" says nothing about it.

    python .ci/audit_pypi.py requirements.lock [--ignore-vuln ID ...] [--allow-unverified]

Exit status: 0 clean, 1 a vulnerability found, 2 some pins could not be verified (0 with
--allow-unverified, which still lists them), 3 PyPI could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

INDEX = "https://pypi.org/pypi"


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def project(name: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{INDEX}/{name}/json", timeout=30) as r:  # noqa: S310
        data: dict[str, object] = json.load(r)
        return data


def check(name: str, version: str) -> tuple[str, str, str, list[dict[str, object]]]:
    """(name, pinned, newest, vulnerabilities) or newest '?' when PyPI did not answer."""
    try:
        data = project(name)
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        return name, version, f"? ({exc})", []
    newest = str(data["info"]["version"])  # type: ignore[index]
    vulns = data.get("vulnerabilities") or []
    return name, version, newest, vulns if newest == version else []  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", type=Path)
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID")
    parser.add_argument("--allow-unverified", action="store_true")
    args = parser.parse_args()
    pins = read_pins(args.requirements)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda item: check(*item), sorted(pins.items())))
    found, unverified, unreachable = [], [], []
    for name, version, newest, vulns in results:
        if newest.startswith("?"):
            unreachable.append(f"{name}: {newest}")
        elif newest != version:
            unverified.append(f"{name}=={version} (newest {newest})")
        for v in vulns:
            ids = {str(v.get("id")), *map(str, v.get("aliases") or [])}  # type: ignore[call-overload]
            if ids & set(args.ignore_vuln):
                continue
            fixed = ", ".join(v.get("fixed_in") or []) or "no fix yet"  # type: ignore[call-overload]
            found.append(f"{name}=={version}: {v.get('id')} (fixed in {fixed}) {v.get('link')}")
    if unreachable:
        print("PyPI did not answer for:\n  " + "\n  ".join(unreachable))
        return 3
    checked = len(pins) - len(unverified)
    print(f"{checked} of {len(pins)} pins are the newest release and were checked on PyPI")
    for line in found:
        print(f"VULNERABLE {line}")
    for line in unverified:
        print(f"UNVERIFIED {line}: below the newest release, PyPI's project page cannot tell")
    if found:
        return 1
    print(f"No known vulnerabilities found in the {checked} checked pins")
    return 2 if unverified and not args.allow_unverified else 0


if __name__ == "__main__":
    sys.exit(main())
