"""`pip install .` installs one package, `hwgen`, and the installed tool runs a user's model.

The wheel is built from this checkout (``pip wheel --no-deps --no-build-isolation``) and
installed with ``--no-deps`` into a fresh venv in a temp dir OUTSIDE the checkout. To avoid
re-installing torch & co. (GBs, minutes), the fresh venv gets the project venv's
site-packages for its *dependencies* through a ``.pth`` file; hwgen itself comes only from
the wheel (the project venv's editable hwgen finder is not activated by a plain .pth path
line, and PYTHONPATH is cleared). Then ``hwgen sim`` runs a model FILE from the temp dir with
``--weights``/``--calib`` and must be bit-exact; every output lands under ``--workdir``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

NET = textwrap.dedent(
    """
    import torch
    from torch import nn


    def build():
        return nn.Sequential(
            nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 3)
        )
    """
)


def _sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.rtl
def test_wheel_installs_only_hwgen_and_runs_a_model_file(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO)], cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("hwgen-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith((".dist-info", ".data"))} == {"hwgen"}, tops
    assert "hwgen/zoo/weights/digits_cnn.pt" in zipfile.ZipFile(wheel).namelist()

    venv = tmp_path / "venv"
    _sh([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_sh([str(venv / "bin" / "python"), "-c", purelib]).stdout.strip())
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    user_env = ("PYTHONPATH", "HWGEN_WORKDIR", "HWGEN_RUNTIME_CACHE")  # none of the suite's
    env = {k: v for k, v in os.environ.items() if k not in user_env}
    env["PATH"] = f"{venv / 'bin'}:{Path(sys.executable).parent}:{env.get('PATH', '')}"
    _sh([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
         "--no-index", str(wheel)], env=env)  # fmt: skip
    assert (site / "hwgen").is_dir()
    assert not (site / "models").exists() and not (site / "sim").exists()
    where = _sh([str(venv / "bin" / "python"), "-c", "import hwgen; print(hwgen.__file__)"],
                env=env, cwd=tmp_path).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site), where

    user = tmp_path / "user"
    user.mkdir()
    (user / "net.py").write_text(NET)
    ns: dict = {}
    exec(NET, ns)  # noqa: S102 - the test's own model source
    torch.manual_seed(0)
    torch.save(ns["build"]().state_dict(), user / "w.pt")
    rng = np.random.default_rng(1)
    np.savez(user / "cal.npz", images=rng.integers(0, 256, (16, 2, 8, 8), dtype=np.uint8),
             labels=rng.integers(0, 3, 16))  # fmt: skip
    r = _sh([str(venv / "bin" / "hwgen"), "--workdir", str(user / "wd"), "sim", "--model",
             "net.py:build", "--weights", "w.pt", "--calib", "cal.npz", "--array", "2x3",
             "-n", "2"], env=env, cwd=user)  # fmt: skip
    assert "bit-exact: 2/2" in r.stdout, r.stdout[-3000:]
    assert (user / "wd" / "build" / "net_build" / "qmodel" / "manifest.json").is_file()
    assert (user / "wd" / "reports" / "net_build_2x3.md").is_file()
    assert sorted(p.name for p in user.iterdir()) == ["cal.npz", "net.py", "w.pt", "wd"]
