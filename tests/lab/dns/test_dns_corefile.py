"""Tests for lab.dns.corefile: the kubeadm default and variants."""

from __future__ import annotations

import pytest

from lab.dns.corefile import KUBEADM_COREFILE, parse_corefile, parse_duration
from lab.dns.errors import CorefileError


def test_kubeadm_default_parses() -> None:
    """The kubeadm Corefile yields one `.:53` block with kubernetes ttl 30, pods insecure and cache 30."""
    core = parse_corefile(KUBEADM_COREFILE)
    (block,) = core.blocks
    assert block.zones == (".",) and block.port == 53
    assert block.kubernetes is not None
    assert block.kubernetes.zones == ("cluster.local", "in-addr.arpa", "ip6.arpa")
    assert block.kubernetes.ttl == 30 and block.kubernetes.pods == "insecure"
    assert block.kubernetes.fallthrough == ("in-addr.arpa", "ip6.arpa")
    assert block.cache is not None and block.cache.success_ttl == 30 and block.cache.denial_ttl == 30
    assert block.forward is not None and block.forward.zone == "."
    assert core.reload and block.has("loadbalance") and core.unknown_plugins == ()


def test_cache_block_with_serve_stale() -> None:
    """`success`, `denial` and `serve_stale DURATION MODE` fill the cache model."""
    core = parse_corefile(
        ".:1053 {\n kubernetes cluster.local\n cache {\n  success 9984 30\n  denial 9984 5\n"
        "  serve_stale 10m verify\n }\n}\n"
    )
    cache = core.blocks[0].cache
    assert core.blocks[0].port == 1053
    assert cache is not None
    assert (cache.success_capacity, cache.success_ttl, cache.denial_ttl) == (9984, 30, 5)
    assert cache.serve_stale_s == 600.0 and cache.stale_refresh == "verify"


def test_serve_stale_default_duration_and_plugin_default_ttl() -> None:
    """Bare `serve_stale` means one hour; a bare `kubernetes` uses TTL 5 and the block's zones."""
    core = parse_corefile("cluster.local:53 {\n kubernetes\n cache {\n serve_stale\n }\n}")
    block = core.blocks[0]
    assert block.cache is not None and block.cache.serve_stale_s == 3600.0
    assert block.kubernetes is not None and block.kubernetes.ttl == 5
    assert block.kubernetes.zones == ("cluster.local",)


def test_erratic_with_zone_scope_and_semicolons() -> None:
    """An erratic block scoped to one zone parses `drop`, `delay N DURATION`, `truncate`, `servfail`."""
    core = parse_corefile(
        "default.svc.cluster.local:53 {\n erratic { drop 3; delay 2 250ms; truncate 4; servfail 1 }\n"
        " kubernetes cluster.local\n}\n.:53 {\n kubernetes cluster.local\n}\n"
    )
    scoped, root = core.blocks
    assert scoped.zones == ("default.svc.cluster.local",) and root.erratic is None
    assert scoped.erratic is not None
    assert (scoped.erratic.drop, scoped.erratic.delay, scoped.erratic.delay_s) == (3, 2, 0.25)
    assert (scoped.erratic.truncate, scoped.erratic.servfail) == (4, 1)


def test_bare_erratic_drops_every_second_query() -> None:
    """`erratic` without a body defaults to dropping one query in two, as CoreDNS does."""
    erratic = parse_corefile(".:53 {\n erratic\n}").blocks[0].erratic
    assert erratic is not None and erratic.drop == 2 and erratic.delay == 0


def test_unknown_plugins_are_kept_not_fatal() -> None:
    """Unknown plugins are listed once each and do not stop the parse."""
    core = parse_corefile(
        ".:53 {\n rewrite name a b\n kubernetes cluster.local\n hosts {\n 1.2.3.4 x\n }\n rewrite x\n}"
    )
    assert core.unknown_plugins == ("rewrite", "hosts")
    assert core.blocks[0].kubernetes is not None


def test_comments_and_dns_prefix() -> None:
    """Comments are ignored and `dns://` server addresses are understood."""
    core = parse_corefile("# header\ndns://cluster.local.:5353 { # zone\n kubernetes # plugin\n}")
    assert core.blocks[0].zones == ("cluster.local",) and core.blocks[0].port == 5353


@pytest.mark.parametrize(
    "text",
    [
        ".:53 {\n kubernetes\n",
        ".:53 {\n}\n}",
        "{ kubernetes }",
        ".:53",
        ".:53 {\n cache abc\n}",
        "",
        ".:53 {\n kubernetes {\n pods sometimes\n }\n}",
    ],
)
def test_malformed_corefiles_raise(text: str) -> None:
    """Malformed text raises CorefileError rather than producing a partial config."""
    with pytest.raises(CorefileError):
        parse_corefile(text)


def test_durations() -> None:
    """Go durations and bare seconds parse; garbage raises."""
    assert parse_duration("1m30s") == 90.0 and parse_duration("100ms") == pytest.approx(0.1)
    assert parse_duration("5") == 5.0
    with pytest.raises(CorefileError):
        parse_duration("5 parsecs")


def test_cache_disable_directives() -> None:
    """`disable success|denial ZONES` (newer kubeadm's cluster.local opt-out) is parsed."""
    core = parse_corefile(
        ".:53 {\n cache 30 {\n  disable success cluster.local\n  disable denial cluster.local\n }\n}"
    )
    cache = core.blocks[0].cache
    assert cache is not None and cache.success_ttl == 30
    assert cache.disable_success == ("cluster.local",) and cache.disable_denial == ("cluster.local",)
