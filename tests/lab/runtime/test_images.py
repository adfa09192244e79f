"""Tests for lab.runtime.images."""

from __future__ import annotations

import pytest

from lab.runtime.images import REGISTRY, ImagePullError, PauseProgram, image_name, program_for
from lab.runtime.testprograms import FileReadyProgram


def test_image_names_drop_tags_and_digests() -> None:
    """Tags and digests are ignored when looking an image up."""
    assert image_name("lab/coredns:1.11") == "lab/coredns"
    assert image_name("registry:5000/lab/x@sha256:abc") == "registry:5000/lab/x"


def test_unknown_and_pause_images_run_pause() -> None:
    """lab/pause and unknown images get the always-ready pause program."""
    assert isinstance(program_for("lab/pause"), PauseProgram)
    assert isinstance(program_for("docker.io/library/nginx:1.25"), PauseProgram)


def test_lab_program_annotation_names_the_class() -> None:
    """lab/program loads the class named by the annotation; without it the pull fails."""
    prog = program_for("lab/program", {"lab.gameday/program": "lab.runtime.testprograms:FileReadyProgram"})
    assert isinstance(prog, FileReadyProgram)
    with pytest.raises(ImagePullError):
        program_for("lab/program", {})
    with pytest.raises(ImagePullError):
        program_for("lab/program", {"lab.gameday/program": "lab.nope:Missing"})


def test_registry_names_the_headline_images() -> None:
    """Every lab workload image is registered."""
    assert {"registry.k8s.io/coredns/coredns", "lab/model-server", "lab/gateway", "lab/loadgen", "lab/list-storm",
            "ghcr.io/gameday/gameday"} <= set(REGISTRY)
