"""requirements.lock and pyproject.toml cannot drift apart: every dependency and extra that
pyproject.toml names, and everything those pull in, is pinned in the lock at a version
pyproject.toml allows, and this environment runs exactly the pinned versions."""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OURS = canonicalize_name(PROJECT["name"])


def read_pins(text: str) -> dict[str, str]:
    """name -> version of each ``name==version`` line of a pip-compile output."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert "==" in line and not line.startswith("-"), f"not a pin: {line!r}"
        name, version = line.split("==")
        pins[canonicalize_name(name)] = version.split(";")[0].strip()
    return pins


PINS = read_pins((ROOT / "requirements.lock").read_text())


def applies(requirement: Requirement, extras: set[str] = frozenset()) -> bool:
    """Whether the requirement's marker holds here (for one of ``extras``, if it has one)."""
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
    )


def declared() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the dependencies and every extra's requirements; an extra
    that names agentrig itself (``all``) stands for the extras it names."""
    found = [("dependencies", Requirement(text)) for text in PROJECT["dependencies"]]
    for extra, texts in PROJECT["optional-dependencies"].items():
        for text in texts:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == OURS:
                assert requirement.extras <= set(PROJECT["optional-dependencies"]), text
                continue
            found.append((f"extra {extra}", requirement))
    return found


def lock_inputs() -> list[Requirement]:
    lines = (ROOT / "requirements.in").read_text().splitlines()
    return [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]


def test_the_lock_pins_every_declared_requirement_at_an_allowed_version():
    problems = []
    for where, requirement in [*declared(), *(("requirements.in", r) for r in lock_inputs())]:
        if not applies(requirement):
            continue
        name = canonicalize_name(requirement.name)
        if name not in PINS:
            problems.append(f"{where}: {requirement} is not in requirements.lock")
        elif not requirement.specifier.contains(PINS[name], prereleases=True):
            problems.append(f"{where}: {requirement} does not allow the locked {PINS[name]}")
    assert problems == [], "run `make lock`:\n" + "\n".join(problems)


def test_the_lock_pins_everything_the_installed_extras_pull_in():
    """Walks the dependency tree of agentrig[all,test] through the installed metadata, so a
    requirement's own extras (markitdown[docx] needs mammoth) count too."""
    (everything,) = map(Requirement, PROJECT["optional-dependencies"]["all"])
    queue = [(OURS, {*everything.extras, "test"})]
    seen: set[tuple[str, frozenset[str]]] = set()
    unpinned = set()
    while queue:
        name, wanted = queue.pop()
        if (name, frozenset(wanted)) in seen:
            continue
        seen.add((name, frozenset(wanted)))
        if name != OURS and name not in PINS:
            unpinned.add(name)
        for text in metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if applies(requirement, wanted):
                queue.append((canonicalize_name(requirement.name), set(requirement.extras)))
    assert unpinned == set()
    assert len(seen) > 150  # the tree was walked, not just its root


def test_installed_versions_are_the_locked_ones():
    """`make test` installed through the lock (the bench extra's packages aside)."""
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {
        name: installed[name] for name in PINS if installed.get(name, PINS[name]) != PINS[name]
    }
    assert wrong == {}, f"installed, and not at the locked version: {wrong}"
    assert len(PINS.keys() & installed.keys()) > 150


def test_read_pins_refuses_what_is_not_a_pin():
    assert read_pins("a==1.0\n    # via b\nB_c==2.0 ; python_version >= '3'\n") == {
        "a": "1.0",
        "b-c": "2.0",
    }
    with pytest.raises(AssertionError):
        read_pins("a>=1.0\n")
    with pytest.raises(AssertionError):
        read_pins("-e file:///work\n")
