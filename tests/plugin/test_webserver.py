"""The webserver layer's quick settle checks (/proc/PID/wchan, the stopped pid) agree with
the kernel's socket table and with what a client sees."""

from __future__ import annotations

import pytest

from pytest_vlanlb.lab.layers.webserver import WEB_PID, accepting, listening, stopped
from pytest_vlanlb.observation.probes import HttpOutcome, http_get

pytestmark = pytest.mark.vlanlb(topology="basic")


def test_started_server_accepts_and_a_stopped_one_is_gone(vlanlb_lab, vlanlb_layers):
    b, a = vlanlb_lab.backend, vlanlb_lab.client_node
    url = f"http://{vlanlb_lab.topology.service.backend_address}"
    vlanlb_layers.apply("webserver")
    # Settled means what the table and a client say: it listens and answers.
    assert accepting(b)
    assert listening(b, "0050")
    assert http_get(a, url).outcome is HttpOutcome.OK
    vlanlb_layers.revert()
    assert stopped(b)
    assert not listening(b, "0050")
    assert http_get(a, url).outcome is HttpOutcome.REFUSED


def test_a_process_not_in_accept_is_not_taken_for_a_listener(vlanlb_lab):
    b = vlanlb_lab.backend
    # The pid file names a shell that sleeps: its wchan is not accept, so the quick check
    # says "not known" (the caller then reads the table, which says no).
    b.exec("busybox", "sh", "-c", f"sleep 5 & echo $! > {WEB_PID}")
    try:
        assert not accepting(b)
        assert not listening(b, "0050")
    finally:
        b.exec("busybox", "sh", "-c", f"kill $(cat {WEB_PID}); rm -f {WEB_PID}")
