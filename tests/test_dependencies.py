"""Drift tests: the dependency floors exclude versions with known advisories, and the
lock files (what the Quick start and CI install) pin, with hashes, versions that
satisfy pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
DEV = [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]]

# The last release with a known advisory, for each package named in issue 10.
VULNERABLE = {
    "starlette": ["0.39.2", "0.49.0", "1.0.0", "1.3.0"],  # CVE-2024-47874 ... CVE-2026-54283
    "python-multipart": ["0.0.9", "0.0.17", "0.0.29", "0.0.30"],  # ... GHSA-v9pg-7xvm-68hf
    "h11": ["0.14.0", "0.15.0"],  # CVE-2025-43859
}


def declared(name: str) -> Requirement:
    found = [r for r in RUNTIME if canonicalize_name(r.name) == canonicalize_name(name)]
    assert found, f"{name} is not a declared dependency"
    return found[0]


@pytest.mark.parametrize("name", sorted(VULNERABLE))
def test_floors_exclude_versions_with_known_advisories(name: str) -> None:
    requirement = declared(name)
    for version in VULNERABLE[name]:
        assert version not in requirement.specifier, (name, version)


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (pinned version, number of hashes), from a `uv pip compile` lock."""
    text = (ROOT / lock).read_text()
    result = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", block)
        if match:
            name = canonicalize_name(match.group(1))
            result[name] = (match.group(2), block.count("--hash=sha256:"))
    return result


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [("requirements.lock", RUNTIME), ("requirements-dev.lock", RUNTIME + DEV)],
)
def test_locks_pin_every_dependency_with_hashes(
    lock: str, requirements: list[Requirement]
) -> None:
    pinned = pins(lock)
    assert pinned, f"{lock} pins nothing"
    assert all(hashes > 0 for _, hashes in pinned.values()), lock
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is missing from {lock}"
        version = pinned[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {requirement.name}=={version}, outside {requirement.specifier}"
        )


def test_readme_and_ci_install_from_the_locks() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "--require-hashes -r requirements-dev.lock" in ci
    assert "--no-deps -e ." in ci
    readme = (ROOT / "README.md").read_text()
    assert "--require-hashes -r requirements.lock" in readme
