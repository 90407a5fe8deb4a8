"""The stock Rasa assistant (`rasa init --no-prompt`) as the benchmark's baseline, trained once and cached.

The cache folder is keyed by the installed Rasa version, so upgrading Rasa retrains the baseline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

from bot.settings import PROJECT_ROOT

CACHE_ROOT = PROJECT_ROOT / ".cache"


def rasa_version() -> str:
    from rasa.version import __version__

    return str(__version__)


def stock_dir() -> Path:
    return CACHE_ROOT / f"stock-rasa-{rasa_version()}"


def quiet_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def ensure_stock_project(log: Path) -> Path:
    """The stock project folder with a trained model; built with `rasa init --no-prompt` on first use."""
    target = stock_dir()
    if any((target / "models").glob("*.tar.gz")):
        return target
    print(f"  building the stock Rasa {rasa_version()} assistant (rasa init, once; cached in {target})", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stock-rasa-") as scratch:
        project = Path(scratch) / "stock"
        project.mkdir()
        with open(log, "ab") as output:
            subprocess.run(
                [sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(project)],
                cwd=scratch, env=quiet_env(), stdout=output, stderr=subprocess.STDOUT, check=True,
            )
        if not any((project / "models").glob("*.tar.gz")):
            raise RuntimeError(f"rasa init produced no model; see {log}")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(project, target)
    print(f"  stock assistant trained in {time.monotonic() - started:.0f} s", flush=True)
    return target


def stock_model(project: Path) -> Path:
    return sorted((project / "models").glob("*.tar.gz"))[-1]
