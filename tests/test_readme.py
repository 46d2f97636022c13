"""The README stays true: Quick start, CI command and catalogue table match the code."""

import re
from pathlib import Path

import pytest

from jinit.catalogue import entries

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S)
    assert block, "the Quick start section has no fenced code block"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    assert _quick_start_commands() == ["python3 dev.py demo", "python3 dev.py test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quick_start_commands()[1] in ci


@pytest.mark.parametrize("name", sorted({e.name for e in entries()}))
def test_catalogue_entry_is_in_readme_table(name):
    assert f"| `jinit.{name}` |" in README, f"README's catalogue table lacks jinit.{name}"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    """Every python block of the README runs, top to bottom, in one namespace (like a notebook)."""
    monkeypatch.chdir(tmp_path)  # blocks may write files (sweep.json, PNGs)
    namespace: dict = {"__name__": "readme"}
    blocks = _python_blocks()
    assert len(blocks) >= 5
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - report which block failed
            raise AssertionError(f"README python block {i + 1} failed: {e!r}\n{block}") from e
