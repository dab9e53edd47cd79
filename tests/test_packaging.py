"""The project's own files: dependencies in one place, README and public API agree."""

from __future__ import annotations

import re
import tomllib

import toolkit
from tests.conftest import ROOT

CONDA_NAMES = {"python-kaleido": "kaleido"}  # conda-forge name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    conda, in_deps = set(), False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
        elif in_deps and re.match(r"^  - [a-z][^:]*$", line):
            name = _name(line[4:])
            conda.add(CONDA_NAMES.get(name, name))
    assert conda - {"python", "pip"} == pip
    assert "- -e .[dev]" in (ROOT / "environment.yml").read_text()


def test_every_public_name_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [
        name
        for name in toolkit.__all__
        if f"`{name}" not in readme and f"toolkit.{name}" not in readme
    ]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


def test_notebooks_are_committed_without_outputs():
    import json

    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        dirty = [
            c
            for c in cells
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
        ]
        assert not dirty, f"{nb.name} has outputs: clear them before committing"


def test_every_data_file_in_the_package_is_in_package_data():
    """A wheel carries only what package-data names: a new asset must be listed there."""
    import subprocess

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["toolkit"]
    tracked = subprocess.run(
        ["git", "ls-files", "toolkit"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:
        return  # not a git checkout (an sdist): nothing to compare
    data = [p.removeprefix("toolkit/") for p in tracked if not p.endswith(".py")]
    # setuptools' globs: "*" stays within one folder
    globs = [re.compile("[^/]*".join(map(re.escape, pat.split("*")))) for pat in patterns]
    missing = [p for p in data if not any(g.fullmatch(p) for g in globs)]
    assert not missing, f"add to [tool.setuptools.package-data]: {missing}"
