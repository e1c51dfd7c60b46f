"""Drift test: the README's two set-up commands are the ones CI and the entry point use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_has_a_run_and_a_test_command() -> None:
    run, test = quick_start_commands()[:2]
    assert run.endswith("python -m bot")
    assert "pytest" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = quick_start_commands()[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_readme_documents_every_setting() -> None:
    from bot.config import Settings  # noqa: F401  (the names below are what it reads)

    source = (ROOT / "bot" / "config.py").read_text()
    variables = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', source))
    assert variables, "no settings found: the pattern no longer matches bot/config.py"
    missing = sorted(v for v in variables if f"`{v}`" not in README)
    assert not missing, f"settings missing from README.md: {missing}"


def test_tests_clean_every_setting() -> None:
    """The autouse clean_env fixture and test servers blank every variable the app reads."""
    from tests.support.server_process import APP_VARIABLES

    source = (ROOT / "bot" / "config.py").read_text()
    variables = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', source))
    assert variables
    assert variables <= set(APP_VARIABLES), sorted(variables - set(APP_VARIABLES))



def test_no_claim_that_a_wrong_passphrase_tells_nothing_while_its_timing_tells() -> None:
    # A wrong passphrase costs a scrypt derivation an unknown key never reaches:
    # the docs must say what that tells, with the measurement and how to repeat it.
    reveal = (ROOT / "bot" / "web" / "reveal.py").read_text()
    for text in (README, reveal):
        assert "tells a visitor nothing" not in text
    section = README.split("**What a wrong passphrase tells.**", 1)[1].split("\n- ", 1)[0]
    assert "timing" in section and "live and passphrase-protected" in section
    assert "docs/passphrase_timing.md" in section and "bench/passphrase_timing.py" in section
    measured = (ROOT / "docs" / "passphrase_timing.md").read_text()
    assert ".venv/bin/python bench/passphrase_timing.py" in measured
    assert "| API POST, live key, wrong passphrase |" in measured
    assert "| page POST, live key, wrong passphrase |" in measured
    assert (ROOT / "bench" / "passphrase_timing.py").exists()
