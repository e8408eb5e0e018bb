"""The repository keeps its promises: CI runs the README's steps, chapters follow the skeleton, the workflow
is valid, notebooks carry no outputs, and no Cityscapes data is committed."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci_lines, f"README command not run verbatim by .ci/run: {command}"


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert sorted(files) == sorted(str(p.relative_to(ROOT).with_suffix("")) for p in CHAPTERS)
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["only_build_toc_files"] is True


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_no_outputs_and_the_skeleton(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "strip outputs before committing"
    markdown = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    assert markdown[0].startswith("# "), "a chapter opens with its title"
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    for required in ("## What you will learn", "## Summary", "## Exercises"):
        assert required in headings, f"{path.name} lacks {required!r}"


def test_workflow_is_a_valid_github_workflow():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(ROOT / ".github" / "workflows" / "ci.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_cityscapes_data_is_committed():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    data = [f for f in files if re.search(r"(leftImg8bit|gtFine|gtCoarse).*\.(png|json|zip)$", f)]
    assert data == []


def test_readme_profile_table_matches_the_profiles():
    from seglib.profiles import PROFILES

    readme = (ROOT / "README.md").read_text()
    for name, profile in PROFILES.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        (h, w), (ih, iw) = profile.synthetic_size, profile.image_size
        assert f"{h}×{w}" in row and f"{ih}×{iw}" in row, row
