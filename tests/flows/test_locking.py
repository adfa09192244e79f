"""The per-target lock (Prefect concurrency limit + heartbeat-renewed cluster Lease) against a real API server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from flows.locking import limit_name, target_lock
from tasks.cluster import Cluster
from tasks.errors import CampaignLocked
from tasks.lease import LEASE_NAME, LeaseKeeper, acquire_target_lease, lease_holder
from tests.conftest import poll


@pytest.fixture
def cluster(apiserver: Any) -> Iterator[Cluster]:
    """A facade over the real API server as the runner; the campaign lease is removed afterwards."""
    c = Cluster.from_kubeconfig(apiserver.kubeconfig, "lab")
    try:
        yield c
    finally:
        try:
            c.delete_lease("gameday", LEASE_NAME)
        except Exception:  # noqa: BLE001 - already gone
            pass
        c.close()


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    """Poll ``predicate`` every 0.1 s until truthy or fail naming ``what`` (tests.conftest.poll)."""
    return poll(predicate, timeout, what, 0.1)


def test_limit_name_is_a_safe_slug() -> None:
    """Targets with odd characters map to a stable, lowercase limit name."""
    assert limit_name("Prod/EU-1 ctx") == "gameday-target-prod-eu-1-ctx"


def test_second_lock_on_a_target_is_refused_naming_the_holder(harness: None, cluster: Cluster) -> None:
    """While run-a holds the target, run-b is refused within seconds with run-a's name; after release it gets it."""
    with target_lock(cluster, "lock-test", "run-a"):
        assert lease_holder(cluster, "gameday") == ("run-a", False)
        start = time.monotonic()
        with pytest.raises(CampaignLocked, match="run-a"):
            with target_lock(cluster, "lock-test", "run-b"):
                pytest.fail("the second lock must not be granted")
        assert time.monotonic() - start < 60, "refused, not queued"
    assert lease_holder(cluster, "gameday") == (None, True)
    with target_lock(cluster, "lock-test", "run-b"):
        assert lease_holder(cluster, "gameday")[0] == "run-b"


def test_the_lease_lives_as_long_as_the_setting_says(harness: None, cluster: Cluster) -> None:
    """A run's campaign Lease carries the TTL it was given (GAMEDAY_LEASE_TTL_S): the janitor's clock."""
    from tasks.lease import LEASE_NAME

    with target_lock(cluster, "ttl-test", "run-ttl", ttl_s=12):
        assert cluster.read_lease("gameday", LEASE_NAME).spec.lease_duration_seconds == 12
    with target_lock(cluster, "ttl-test", "run-ttl"):
        assert cluster.read_lease("gameday", LEASE_NAME).spec.lease_duration_seconds == 90


def test_keeper_renews_a_short_lease_until_released(cluster: Cluster) -> None:
    """A 1.5 s lease stays live for several TTLs while its keeper beats, and is gone after release."""
    keeper = LeaseKeeper(cluster, "run-k", ttl=1.5).acquire()
    try:
        wait_for(lambda: keeper.renewals >= 4, 20, "four renewals")
        assert lease_holder(cluster, "gameday") == ("run-k", False)
    finally:
        assert keeper.release()
    assert lease_holder(cluster, "gameday") == (None, True)


def test_dead_holders_short_lease_goes_stale_and_is_taken_over(cluster: Cluster) -> None:
    """A lease nobody renews goes stale after its TTL, another run takes it over, and the dead one cannot delete it."""
    keeper = LeaseKeeper(cluster, "run-dead", ttl=1.0)
    keeper.acquire()
    keeper._stop.set()  # the heartbeat dies with its run
    wait_for(lambda: lease_holder(cluster, "gameday") == ("run-dead", True), 20, "the lease to go stale")
    acquire_target_lease(cluster, "run-new", 30)
    assert lease_holder(cluster, "gameday") == ("run-new", False)
    assert not keeper.release(), "a keeper must not delete a lease it no longer holds"
    assert lease_holder(cluster, "gameday")[0] == "run-new"


def test_a_renewal_whose_answer_was_lost_is_not_taken_for_a_rival(cluster: Cluster,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A renewal the API server committed but whose answer was lost, retried into a real Conflict, is read again and
    found the holder's own: it is renewed, not reported as another runner's (CampaignLocked)."""
    acquire_target_lease(cluster, "run-1", 30)
    real = cluster.replace_lease
    writes: list[str] = []

    def committed_then_retried(namespace: str, name: str, body: dict[str, Any]) -> Any:
        writes.append(body["metadata"]["resourceVersion"])
        done = real(namespace, name, body)
        if len(writes) == 1:
            real(namespace, name, body)  # the client's retry of the write it heard nothing from: 409 Conflict
        return done

    monkeypatch.setattr(cluster, "replace_lease", committed_then_retried)
    acquire_target_lease(cluster, "run-1", 30)
    assert len(writes) == 2 and writes[0] != writes[1], writes
    assert lease_holder(cluster, "gameday") == ("run-1", False)


def test_keeper_that_loses_its_lease_says_so(cluster: Cluster) -> None:
    """When another holder has taken the lease, the keeper's next beat calls on_lost with the holder's name."""
    lost: list[str] = []
    keeper = LeaseKeeper(cluster, "run-old", ttl=0.6, on_lost=lost.append).acquire()
    try:
        lease = cluster.to_dict(cluster.read_lease("gameday", LEASE_NAME))
        lease["spec"]["holderIdentity"] = "run-thief"
        cluster.replace_lease("gameday", LEASE_NAME, lease)
        wait_for(lambda: lost, 10, "on_lost")
        assert "run-thief" in lost[0]
    finally:
        keeper.release()


def _take_slot(name: str) -> None:
    """Take one slot of the limit and never release it (a run that died holding it)."""
    from prefect.client.orchestration import get_client

    from flows.locking import ensure_limit

    ensure_limit(name)
    with get_client(sync_client=True) as client:
        client.request(
            "POST",
            "/v2/concurrency_limits/increment",
            json={"names": [name], "slots": 1, "mode": "concurrency"},
        )


def test_release_limit_frees_a_slot_whose_lease_is_still_live(harness: None, cluster: Cluster) -> None:
    """A slot left taken while its run's cluster lease is still live refuses the next run, naming that run, until
    release_limit deletes the limit (and the lease is released); then it is granted."""
    from flows.locking import release_limit
    from tasks.lease import release_target_lease

    _take_slot(limit_name("dead-slot"))
    acquire_target_lease(cluster, "run-dead", 60)
    with pytest.raises(CampaignLocked, match="run-dead"):
        with target_lock(cluster, "dead-slot", "run-next"):
            pytest.fail("the slot is taken by a run whose lease is live")
    assert release_limit("dead-slot")
    assert release_target_lease(cluster, "run-dead")
    with target_lock(cluster, "dead-slot", "run-next"):
        assert lease_holder(cluster, "gameday")[0] == "run-next"
    assert not release_limit("no-such-target")


def test_a_slot_no_live_run_holds_is_freed_on_the_next_lock(harness: None, cluster: Cluster,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A slot left taken with no cluster lease behind it (an ephemeral server never expires a SIGKILLed run's slot)
    does not lock the target out: the next run frees it, says so, and gets the target."""
    _take_slot(limit_name("orphan-slot"))
    assert lease_holder(cluster, "gameday") == (None, True)
    with caplog.at_level("WARNING", logger="flows.locking"):
        with target_lock(cluster, "orphan-slot", "run-next"):
            assert lease_holder(cluster, "gameday")[0] == "run-next"
    assert "no live run holds the target's lease: freeing it" in caplog.text
