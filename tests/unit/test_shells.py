"""Which podman URLs a node's long-lived shell can be opened through."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from pytest_vlanlb.podman.exec_shells import socket_address


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http+unix://%2Frun%2Fpodman%2Fpodman.sock", ("unix", "/run/podman/podman.sock")),
        ("http://127.0.0.1:8080", ("inet", ("127.0.0.1", 8080))),
        ("http+ssh://core@host/run/podman.sock", None),
    ],
)
def test_socket_address_of_a_podman_url(url, expected):
    class Client:
        base_url = urlparse(url)

    found = socket_address(Client())
    if expected is None:
        assert found is None
    else:
        family, address = found
        assert (family.name.removeprefix("AF_").lower(), address) == expected
