"""The agent's CLI: consistent flags become a config, inconsistent ones a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import ConfigError, parse

BASE = ["--node", "n1", "--api-url", "http://127.0.0.1:1", "--allow-user", "gameday-runner"]


def test_flags_become_config() -> None:
    """Listen address, CIDRs, limits and paths are parsed."""
    cfg = parse([*BASE, "--listen", "127.0.0.1:0", "--allow-cidr", "192.0.2.0/24", "--max-ttl", "60",
                 "--kmsg-path", "/tmp/k", "--nvml", "fake"])
    assert (cfg.host, cfg.port, cfg.kmsg_path, cfg.nvml) == ("127.0.0.1", 0, Path("/tmp/k"), "fake")
    assert [str(c) for c in cfg.limits.allowed_cidrs] == ["192.0.2.0/24"] and cfg.limits.max_ttl_seconds == 60


@pytest.mark.parametrize(("argv", "needle"), [
    (["--node", "n1", "--allow-user", "x"], "--api-url"),
    (["--node", "n1", "--api-url", "http://x"], "--allow-user"),
    ([*BASE, "--tls-cert", "/c"], "go together"),
    ([*BASE, "--max-ttl", "0"], "--max-ttl"),
    ([*BASE, "--allow-cidr", "nonsense"], "--allow-cidr"),
    (["--node", "n1", "--api-url", "http://x"], "--authorize sar"),
    (["--node", "n1", "--api-url", "http://x", "--authorize", "allowlist"], "needs at least one"),
    ([*BASE, "--authorize", "sar"], "drop --allow-user"),
])
def test_bad_flags_are_refused(argv: list[str], needle: str) -> None:
    """Missing credentials, nobody allowed, half a TLS pair, bad TTL or CIDR: refused with a reason."""
    with pytest.raises(ConfigError, match=needle):
        parse(argv)


def test_authorize_modes() -> None:
    """An allow-list defaults to any (allow-list or SubjectAccessReview); sar needs no allow-list."""
    assert parse(BASE).authorize == "any"
    assert parse([*BASE, "--authorize", "allowlist"]).authorize == "allowlist"
    cfg = parse(["--node", "n1", "--api-url", "http://x", "--authorize", "sar"])
    assert cfg.authorize == "sar" and not cfg.allow_users and not cfg.allow_groups


def test_kubeconfig_credentials(tmp_path: Path) -> None:
    """--kubeconfig takes server and token from the current context."""
    kc = tmp_path / "kc"
    kc.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                  "clusters: [{name: k, cluster: {server: 'https://10.0.0.1:6443', insecure-skip-tls-verify: true}}]\n"
                  "users: [{name: u, user: {token: abc}}]\n")
    cfg = parse(["--node", "n", "--kubeconfig", str(kc), "--allow-group", "gameday:runners"])
    assert (cfg.api.url, cfg.api.bearer(), cfg.api.insecure) == ("https://10.0.0.1:6443", "abc", True)


def test_allow_file_adds_to_flags(tmp_path: Path) -> None:
    """The allow-list file (the DaemonSet's ConfigMap) adds users, groups and CIDRs."""
    f = tmp_path / "allow.yaml"
    f.write_text("users: [system:serviceaccount:gameday:gameday-runner]\ngroups: [gameday:runners]\ncidrs: [10.0.0.0/8]\n")
    cfg = parse(["--node", "n", "--api-url", "http://x", "--allow-file", str(f)])
    assert cfg.allow_users == {"system:serviceaccount:gameday:gameday-runner"} and cfg.allow_groups == {"gameday:runners"}
    assert [str(c) for c in cfg.limits.allowed_cidrs] == ["10.0.0.0/8"]
