"""The wire models: what the protocol itself accepts and refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.protocol import XID_CODES, XID_TEXT, InjectRequest, LeaseRenewal, PartitionParams, XidParams
from blueprints.faults import XID_ACTIONS


def test_xid_codes_match_the_blueprint_catalogue() -> None:
    """The agent allows exactly the XID codes blueprints know, and has a text for each."""
    assert set(XID_CODES) == set(XID_ACTIONS) == set(XID_TEXT)


def test_inject_request_picks_params_by_kind() -> None:
    """The params union is discriminated by kind."""
    req = InjectRequest.model_validate({"fault_id": "a", "run_id": "r", "ttl_seconds": 5,
                                        "params": {"kind": "nccl-partition", "peers": ["192.0.2.7"]}})
    assert isinstance(req.params, PartitionParams) and req.params.peers == ["192.0.2.7/32"]


@pytest.mark.parametrize("bad", [
    {"ttl_seconds": -1}, {"ttl_seconds": 0}, {"ttl_seconds": 7200}, {"fault_id": ""}, {"extra": True},
    {"params": {"kind": "gpu-xid", "code": 9999}}, {"params": {"kind": "gpu-degrade"}},
    {"params": {"kind": "nccl-partition", "peers": []}},
    {"params": {"kind": "nccl-partition", "peers": ["192.0.2.1"], "port_range": [10, 5]}},
    {"params": {"kind": "nccl-partition", "peers": ["192.0.2.1"], "transport": "rdma"}},
    {"params": {"kind": "gpu-xid", "code": 79, "pci_address": "0000:cb:00; rm -rf /"}},
])
def test_inject_request_refuses(bad: dict[str, object]) -> None:
    """Negative/zero/too-long TTLs, unknown fields, unknown XIDs, empty peers, bad ports and PCI strings are refused."""
    base: dict[str, object] = {"fault_id": "a", "run_id": "r", "ttl_seconds": 5, "params": {"kind": "gpu-xid", "code": 79}}
    with pytest.raises(ValidationError):
        InjectRequest.model_validate(base | bad)


def test_lease_renewal_needs_positive_ttl() -> None:
    """A renewal with a negative TTL is refused."""
    with pytest.raises(ValidationError):
        LeaseRenewal(ttl_seconds=-3)


def test_xid_message_names_the_code() -> None:
    """The refusal of an unknown XID says which code and which are allowed."""
    with pytest.raises(ValidationError, match="XID 9999 is not an allowed code"):
        XidParams(code=9999)


def test_pci_address_becomes_driver_form() -> None:
    """NVML-style bus ids are normalised to the form the driver prints in XID lines."""
    assert XidParams(code=79, pci_address="00000000:CB:00.0").pci_address == "0000:cb:00"
    assert XidParams(code=79, pci_address="0000:18:00.0").pci_address == "0000:18:00"
