"""The distribution installs one import name, `rewardstack`, and nothing generic beside it.

Builds the wheel, installs it (no deps) into a fresh venv that borrows this venv's third-party
packages through a path entry, and imports ours from a project that has its own `trainer.py` and
`services/`: the common layout that `from trainer.trl_rewards import ...` used to break.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"trainer": "rewardstack", "services": "rewardstack.services", "sandbox": "rewardstack.sandbox"}


def test_every_package_folder_is_in_pyprojects_list() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {v: k for k, v in PACKAGE_DIRS.items()}
    folders = set()
    for folder, name in PACKAGE_DIRS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            folders.add(".".join([name, *relative.parts]))
    assert folders == set(config["packages"]), "add new subpackages to [tool.setuptools].packages in pyproject.toml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # Build with this venv's setuptools when it has one (fast, offline); else pip's isolated build env.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "--quiet", "-w", str(out), str(ROOT)],
        check=True, cwd=build, timeout=300,
    )
    (wheel,) = out.glob("rewardstack-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_holds_only_rewardstack(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert top == {"rewardstack", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for module in ("rewardstack/trl.py", "rewardstack/verl.py", "rewardstack/openrlhf.py", "rewardstack/client.py",
                   "rewardstack/services/decoded_text.py", "rewardstack/services/gateway/app.py", "rewardstack/sandbox/zygote.py"):
        assert module in names


PROJECT_CHECK = """
import importlib.util, sys, trainer, services
assert trainer.__file__.startswith(sys.argv[1]), trainer.__file__   # the project's own modules win
assert services.__file__.startswith(sys.argv[1]), services.__file__
assert trainer.MINE == services.MINE == "project"
from rewardstack import RewardClient, AsyncRewardClient
import rewardstack, rewardstack.trl, rewardstack.verl, rewardstack.openrlhf
from rewardstack.services.gateway.app import create_app
assert "site-packages" in rewardstack.__file__, rewardstack.__file__
print(rewardstack.__file__)
"""


@pytest.mark.slow
def test_a_fresh_venv_imports_rewardstack_next_to_a_project_with_its_own_trainer(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # Third-party packages come from this venv by a path entry, which (unlike site dirs) runs none of its .pth
    # files, so this checkout's editable install stays out; only the wheel provides `rewardstack`.
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
                   check=True, timeout=300)
    assert sorted(p.name for p in site.iterdir() if p.name in ("trainer", "services", "sandbox", "rewardstack")) == ["rewardstack"]

    project = tmp_path / "project"
    (project / "services").mkdir(parents=True)
    (project / "trainer.py").write_text('MINE = "project"\n')
    (project / "services" / "__init__.py").write_text('MINE = "project"\n')
    done = subprocess.run([python, "-c", PROJECT_CHECK, str(project)], cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert str(site) in done.stdout
