"""The lock files agree with pyproject.toml, and the installs use them.

requirements.lock (the runtime's, which the image installs) and
requirements-dev.lock (runtime and development tools, which `make venv`
installs) pin every package, transitive ones included, with the hashes of
its files; `make lock` writes both from pyproject.toml. A pin changed in
pyproject.toml without `make lock`, a lock line without a hash, the two
locks disagreeing, or an install that stops checking hashes fails here.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
DOCKERFILE = ROOT / "Dockerfile"
MAKEFILE = ROOT / "Makefile"

HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}(?![0-9a-f])")
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (`Jinja2` is `jinja2`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Locked:
    name: str
    version: str | None  # None: the line pins no exact version
    hashes: tuple[str, ...]
    line: str


def logical_lines(text: str) -> list[str]:
    """Lines with their backslash continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def read_lock(path: Path) -> dict[str, Locked]:
    assert path.is_file(), f"{path.name} is missing: `make lock` writes it"
    locked: dict[str, Locked] = {}
    for line in logical_lines(path.read_text()):
        # Comments that follow a requirement (uv's `# via`) are not part of it.
        requirement = line.split(" #", 1)[0].strip()
        if requirement.startswith("-"):
            raise AssertionError(f"{path.name}: unexpected option line {requirement!r}")
        match = NAME.match(requirement)
        assert match, f"{path.name}: cannot read the requirement {requirement!r}"
        name = canonical(match[1].split("[", 1)[0])
        pin = re.match(r"^[A-Za-z0-9._\[\],-]+\s*==\s*([^\s;\\]+)", requirement)
        assert name not in locked, f"{path.name} lists {name} twice"
        locked[name] = Locked(name, pin[1] if pin else None,
                              tuple(HASH.findall(requirement)), requirement)
    assert locked, f"{path.name} lists no package"
    return locked


def pyproject_requirements() -> tuple[list[str], list[str]]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return project["dependencies"], project.get("optional-dependencies", {}).get("dev", [])


def pins(requirements: list[str]) -> dict[str, str]:
    """{name: version} of the `name==version` requirements."""
    pinned = {}
    for requirement in requirements:
        match = re.match(r"^\s*([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*(?:;.*)?$",
                         requirement)
        if match:
            pinned[canonical(match[1])] = match[2]
    return pinned


def names(requirements: list[str]) -> set[str]:
    return {canonical(NAME.match(requirement.strip())[1]) for requirement in requirements}


# -- the locks against pyproject.toml ------------------------------------------

def assert_pins_locked(pinned: dict[str, str], locked: dict[str, Locked], lock: Path) -> None:
    problems = []
    for name, version in sorted(pinned.items()):
        if name not in locked:
            problems.append(f"{name}=={version} is pinned in pyproject.toml but not in {lock.name}")
        elif locked[name].version != version:
            problems.append(f"{name} is pinned =={version} in pyproject.toml but "
                            f"{lock.name} has {locked[name].version}")
    assert not problems, "; ".join(problems) + " (run `make lock`)"


def test_every_pin_of_pyproject_is_in_the_dev_lock_at_its_version():
    runtime, dev = pyproject_requirements()
    pinned = pins(runtime) | pins(dev)
    assert pinned, "pyproject.toml pins no dependency"
    assert_pins_locked(pinned, read_lock(DEV_LOCK), DEV_LOCK)


def test_every_runtime_pin_is_in_the_runtime_lock_at_its_version():
    runtime, _ = pyproject_requirements()
    assert_pins_locked(pins(runtime), read_lock(LOCK), LOCK)


def test_every_dependency_of_pyproject_is_locked():
    # Pinned or not: a dependency added without `make lock` is not installed.
    runtime, dev = pyproject_requirements()
    dev_locked, runtime_locked = read_lock(DEV_LOCK), read_lock(LOCK)
    missing = sorted(f"{name} (not in {DEV_LOCK.name})"
                     for name in names(runtime) | names(dev) if name not in dev_locked)
    missing += sorted(f"{name} (not in {LOCK.name})"
                      for name in names(runtime) if name not in runtime_locked)
    assert not missing, f"dependencies of pyproject.toml left out of a lock: {', '.join(missing)}"


# -- the locks themselves --------------------------------------------------------

def test_every_locked_package_has_an_exact_version_and_a_hash():
    for lock in (LOCK, DEV_LOCK):
        locked = read_lock(lock)
        unpinned = sorted(entry.line for entry in locked.values() if entry.version is None)
        assert not unpinned, f"{lock.name} has lines without an exact ==version: {unpinned}"
        unhashed = sorted(entry.name for entry in locked.values() if not entry.hashes)
        assert not unhashed, (f"{lock.name} has packages without a --hash=sha256: "
                              f"{', '.join(unhashed)}")


def test_the_runtime_lock_agrees_with_the_dev_lock():
    runtime, dev = read_lock(LOCK), read_lock(DEV_LOCK)
    problems = []
    for name, entry in sorted(runtime.items()):
        if name not in dev:
            problems.append(f"{name}=={entry.version} is in {LOCK.name} but not in "
                            f"{DEV_LOCK.name}")
        elif dev[name].version != entry.version:
            problems.append(f"{name} is {entry.version} in {LOCK.name} but "
                            f"{dev[name].version} in {DEV_LOCK.name}")
    assert not problems, "; ".join(problems) + " (run `make lock`)"


# -- the installs ---------------------------------------------------------------

def pip_installs(command: str) -> list[list[str]]:
    """The argument lists of the `pip install`s of a shell command."""
    installs = []
    for part in re.split(r"&&|\|\||;", command):
        words = shlex.split(part)
        for index in range(len(words) - 1):
            if words[index].endswith("pip") and words[index + 1] == "install":
                installs.append(words[index + 2:])
                break
    return installs


def requirement_files(arguments: list[str]) -> list[str]:
    files = []
    for index, word in enumerate(arguments):
        if word in ("-r", "--requirement") and index + 1 < len(arguments):
            files.append(arguments[index + 1])
        elif word.startswith("--requirement="):
            files.append(word.split("=", 1)[1])
        elif word.startswith("-r") and len(word) > 2:
            files.append(word[2:])
    return files


def installs_with_hashes(arguments: list[str], lock: Path) -> bool:
    return (lock.name in {Path(f).name for f in requirement_files(arguments)}
            and "--require-hashes" in arguments)


def installs_project_without_deps(arguments: list[str]) -> bool:
    return ("--no-deps" in arguments and "." in arguments
            and ("-e" in arguments or "--editable" in arguments))


def dockerfile_instructions() -> list[tuple[str, str]]:
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in logical_lines(DOCKERFILE.read_text())]


def test_the_dockerfile_installs_the_runtime_lock_with_hashes_before_the_sources():
    instructions = dockerfile_instructions()
    lock_install = next((index for index, (op, args) in enumerate(instructions)
                         if op == "RUN" and any(installs_with_hashes(install, LOCK)
                                                for install in pip_installs(args))), None)
    assert lock_install is not None, (f"no RUN of the Dockerfile runs `pip install "
                                      f"--require-hashes -r {LOCK.name}`")
    copies = [(index, shlex.split(args)) for index, (op, args) in enumerate(instructions)
              if op in ("COPY", "ADD")]
    lock_copy = [index for index, words in copies
                 if index < lock_install and any(Path(w).name == LOCK.name for w in words[:-1])]
    assert lock_copy, f"the Dockerfile installs {LOCK.name} before it copies it into the image"
    earlier = [words for index, words in copies if index < lock_install]
    others = [words for words in earlier if any(Path(w).name != LOCK.name
                                               for w in words[:-1] if not w.startswith("--"))]
    assert not others, (f"the Dockerfile copies {others} before installing {LOCK.name}: the "
                        "dependency layer must be keyed on the lock alone")
    project_installs = [install for op, args in instructions[lock_install + 1:] if op == "RUN"
                        for install in pip_installs(args)]
    assert any(installs_project_without_deps(install) for install in project_installs), (
        "the Dockerfile does not install the project with `pip install --no-deps --editable .` "
        "after the lock: the project's own install would resolve dependencies past the lock")
    unchecked = [install for install in project_installs
                 if not installs_project_without_deps(install)]
    assert not unchecked, f"the Dockerfile installs more than the lock after it: {unchecked}"
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text()
                .splitlines() if line.strip() and not line.lstrip().startswith(("#", "!"))]
    excluding = [pattern for pattern in patterns if fnmatch.fnmatch(LOCK.name, pattern)]
    assert not excluding, f".dockerignore leaves {LOCK.name} out of the image: {excluding}"


def makefile() -> tuple[dict[str, str], dict[str, tuple[list[str], list[str]]]]:
    """The Makefile's variables, and its rules as {target: (prerequisites, recipe)}."""
    variables: dict[str, str] = {}
    rules: dict[str, tuple[list[str], list[str]]] = {}
    lines = MAKEFILE.read_text().replace("\\\n", " ").splitlines()

    def expand(text: str) -> str:
        for _ in range(10):
            text = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                          lambda match: variables.get(match[1], ""), text)
        return text

    current: list[str] | None = None
    for line in lines:
        if line.startswith("\t"):
            if current is not None:
                current.append(expand(line.strip()))
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?::=|\?=|=)\s*(.*)$", line)
        if assignment:
            variables.setdefault(assignment[1], assignment[2].strip())
            current = None
            continue
        rule = re.match(r"^([^:=#]+):(?!=)(.*)$", line)
        if rule:
            current = []
            for target in expand(rule[1]).split():
                rules[target] = (expand(rule[2]).split(), current)
            continue
        current = None
    return variables, rules


def test_the_makefile_venv_installs_the_dev_lock_with_hashes():
    _, rules = makefile()
    assert "venv" in rules, "the Makefile has no venv target"
    seen, pending, recipes, stamp_prerequisites = set(), ["venv"], [], []
    while pending:
        target = pending.pop()
        if target in seen or target not in rules:
            continue
        seen.add(target)
        prerequisites, recipe = rules[target]
        recipes += recipe
        if recipe:
            stamp_prerequisites += prerequisites
        pending += prerequisites
    installs = [install for line in recipes for install in pip_installs(line)]
    assert any(installs_with_hashes(install, DEV_LOCK) for install in installs), (
        f"`make venv` does not run `pip install --require-hashes -r {DEV_LOCK.name}`; "
        f"its installs: {installs}")
    assert any(installs_project_without_deps(install) for install in installs), (
        "`make venv` does not install the project with `pip install --no-deps -e .`: "
        f"its installs: {installs}")
    unlocked = [install for install in installs
                if not installs_with_hashes(install, DEV_LOCK)
                and not installs_project_without_deps(install)
                and install not in (["--quiet", "--upgrade", "pip"], ["--upgrade", "pip"])]
    assert not unlocked, f"`make venv` installs past the lock: {unlocked}"
    for needed in (PYPROJECT.name, DEV_LOCK.name):
        assert needed in stamp_prerequisites, (
            f"the venv's install does not depend on {needed}: a change of it would not "
            f"reinstall (prerequisites: {stamp_prerequisites})")
