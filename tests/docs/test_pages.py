"""The README is a front door and the guides are guides: short, without a results diary, naming
only files that exist; the site builds with ``mkdocs build --strict`` and loads nothing from the
internet."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.docs.snippets import DOCS, REPO

README = REPO / "README.md"
GUIDES = sorted(
    p
    for p in DOCS.rglob("*.md")
    if p.relative_to(DOCS).parts[0] not in {"results", "hooks"} and p.name != "changelog.md"
)
# A diary: machine load, issue numbers, and measurements dated in the text.
DIARY = [
    re.compile(r"load average", re.I),
    re.compile(r"\bissues? #?\d+", re.I),
    re.compile(r"\b(measured|run|ran|tried|timed)\b[^.\n]{0,60}\b20\d\d-\d\d-\d\d", re.I),
    re.compile(r"\b20\d\d-\d\d-\d\d\b[^.\n]{0,40}\b(measured|run|UTC)\b", re.I),
]


def test_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    text = "\n".join(lines)
    # The two set-up commands, unchanged (.ci/newcomer.sh runs the first block of this section).
    setup = re.search(r"^## Set-up commands\n(.*?)^## ", text, flags=re.M | re.S)
    assert setup
    assert re.findall(r"^```sh\n(.*?)```", setup.group(1), flags=re.M | re.S) == [
        "make run\n",
        "make test\n",
    ]
    assert "make docs" in text and "mkdocs build --strict" in text


def test_readme_links_every_guide() -> None:
    text = README.read_text()
    for page in sorted((DOCS / "guides").glob("*.md")):
        assert f"(docs/guides/{page.name})" in text, f"README does not link {page.name}"


@pytest.mark.parametrize("page", [README, *GUIDES], ids=lambda p: str(p.relative_to(REPO)))
def test_no_results_diary(page: Path) -> None:
    text = page.read_text()
    for pattern in DIARY:
        found = pattern.search(text)
        assert not found, f"{page.relative_to(REPO)}: {found.group(0)!r} belongs on a Results page"


def test_no_load_average_in_the_code() -> None:
    for folder in ("app", "training"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".txt", ".toml", ".ini"}:
                assert "load average" not in path.read_text(), path


REPOSITORY_PATH = re.compile(r"\b((?:deploy|app|training|bench|tests|clients)/[\w./-]*\w)")
# Made by the reader or the harness, not committed.
CREATED_LATER = {"deploy/.env", "bench/.models"}


def test_repository_paths_named_in_the_docs_exist() -> None:
    missing = set()
    for page in [README, *DOCS.rglob("*.md")]:
        for path in REPOSITORY_PATH.findall(page.read_text()):
            if path in CREATED_LATER:
                continue
            # A module may be named without its .py (app/cli: a module or a package).
            if not (REPO / path).exists() and not (REPO / f"{path}.py").exists():
                missing.add(f"{page.relative_to(REPO)}: {path}")
    assert not missing, sorted(missing)


def nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_nav_covers_every_page() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text().replace("!!python", "#"))
    nav = set(nav_pages(config["nav"]))
    generated = {"reference/configuration.md", "reference/cli.md", "reference/http-api.md"}
    written = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "hooks" not in p.parts}
    assert written | generated == nav
    assert config["theme"]["font"] is False, "Material's default font comes from Google Fonts"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_site_builds_strict_with_the_generated_reference(site: Path) -> None:
    for page in ("index.html", "reference/configuration/index.html", "reference/cli/index.html"):
        assert (site / page).is_file(), page
    assert "TEXTCLS_MAX_BATCH_SIZE" in (site / "reference/configuration/index.html").read_text()
    assert (site / "reference/openapi.json").is_file()


def test_site_pages_load_nothing_from_the_internet(site: Path) -> None:
    external = re.compile(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I)
    for page in site.rglob("*.html"):
        found = external.search(page.read_text())
        assert not found, f"{page.relative_to(site)}: {found.group(0)}"


def test_deploy_guides_cover_images_compose_kubernetes_and_other_servers() -> None:
    text = (DOCS / "guides/deploy.md").read_text() + (
        DOCS / "guides/tf-serving-triton.md"
    ).read_text()
    for needle in (
        "--build-arg VARIANT=gpu",
        "docker compose -f deploy/docker-compose.yml",
        "kubectl apply -k deploy/k8s/base",
        "kubectl apply -k deploy/k8s/gpu",
        "## Scaling out",
        "tensorflow/serving",
        ":predict",
        "config.pbtxt",
    ):
        assert needle in text, f"the deploy guides lack {needle!r}"


def test_committed_bench_results_are_the_ones_the_results_pages_cite() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "bench/results"], cwd=REPO, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    cited = "\n".join(p.read_text() for p in (DOCS / "results").glob("*.md"))
    uncited = [
        f for f in listed.stdout.split() if Path(f).name not in cited and Path(f).stem not in cited
    ]
    assert not uncited, f"committed but cited by no Results page: {uncited}"
