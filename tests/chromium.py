"""What the browser tests share: which Chromium, how it is started, and what a missing one means."""

from __future__ import annotations

import os

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Headless as root, and no background connections: the machine has no network but the
# package registries, and Chromium's own requests would only be refused.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def skip_or_fail(message: str) -> None:
    """Skip locally; under CI=true a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(message + " (CI=true, so this is a failure)")
    pytest.skip(message)
