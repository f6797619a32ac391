"""kube-proxy's rule set as data: the chains, the probability ladder, affinity, no endpoints."""

from __future__ import annotations

import re

from pytest_vlanlb.layers.kube_proxy import ServiceSpec, chain_names, removal_text, restore_text

SERVICE = "default/service:http"
ENDPOINTS = ("192.168.20.21:80", "192.168.20.22:80", "192.168.20.23:80")


def rules(spec: ServiceSpec) -> list[str]:
    return restore_text(SERVICE, "192.168.10.100", "80", "192.168.20.0/24", spec).splitlines()


def test_chain_names_are_kube_proxys_hashes():
    names = chain_names(SERVICE, ENDPOINTS)
    assert re.fullmatch(r"KUBE-SVC-[A-Z2-7]{16}", names["svc"])
    assert names["ext"][9:] == names["svc"][9:] == names["svl"][9:]
    seps = {names[e] for e in ENDPOINTS}
    assert len(seps) == 3
    assert all(re.fullmatch(r"KUBE-SEP-[A-Z2-7]{16}", s) for s in seps)


def test_cluster_policy_ladder_masquerade_and_forward():
    spec = ServiceSpec("Cluster", False, ENDPOINTS)
    names = chain_names(SERVICE, ENDPOINTS)
    lines = rules(spec)
    ladder = [line for line in lines if line.startswith(f"-A {names['svc']} ")]
    assert [
        re.search(r"--probability (\S+)", line)[1] if "--probability" in line else None
        for line in ladder
    ] == ["0.3333333333", "0.5000000000", None]
    assert [line.split()[-1] for line in ladder] == [names[e] for e in ENDPOINTS]
    assert (
        f'-A {names["ext"]} -m comment --comment "masquerade traffic for {SERVICE} external '
        'destinations" -j KUBE-MARK-MASQ' in lines
    )
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000" in lines
    assert any(
        line.startswith("-A KUBE-POSTROUTING") and line.endswith("-j MASQUERADE") for line in lines
    )
    forward = [line for line in lines if line.startswith("-A KUBE-FORWARD")]
    assert any("--mark 0x4000/0x4000 -j ACCEPT" in line for line in forward)
    assert any("--ctstate RELATED,ESTABLISHED -j ACCEPT" in line for line in forward)
    assert any(line.startswith("-I FORWARD") and line.endswith("-j KUBE-FORWARD") for line in lines)
    dnat = [line for line in lines if "-j DNAT" in line]
    assert [line.split()[-1] for line in dnat] == list(ENDPOINTS)


def test_local_policy_keeps_the_client_address():
    names = chain_names(SERVICE, ENDPOINTS)
    lines = rules(ServiceSpec("Local", False, ENDPOINTS))
    ext = [line for line in lines if line.startswith(f"-A {names['ext']} ")]
    assert not any(line.endswith("-j KUBE-MARK-MASQ") and "LOCAL" not in line for line in ext)
    assert ext[-1] == f"-A {names['ext']} -j {names['svl']}"
    assert any(line.startswith(f"-A {names['svl']} ") for line in lines)


def test_affinity_checks_first_then_sets_on_dnat():
    names = chain_names(SERVICE, ENDPOINTS)
    lines = rules(ServiceSpec("Cluster", True, ENDPOINTS))
    ladder = [line for line in lines if line.startswith(f"-A {names['svc']} ")]
    assert all("--rcheck --seconds 10800 --reap" in line for line in ladder[:3])
    assert "--probability" in ladder[3]
    assert all(
        "-m recent --name KUBE-SEP-" in line and "--set" in line
        for line in lines
        if "-j DNAT" in line
    )


def test_no_endpoints_rejects_the_loadbalancer_ip():
    lines = rules(ServiceSpec("Cluster", False, ()))
    assert not any("KUBE-SVC-" in line or "-j DNAT" in line for line in lines)
    reject = [line for line in lines if line.startswith("-A KUBE-EXTERNAL-SERVICES")]
    assert reject == [
        f"-A KUBE-EXTERNAL-SERVICES -d 192.168.10.100/32 -p tcp -m comment --comment "
        f'"{SERVICE} has no endpoints" -m tcp --dport 80 '
        "-j REJECT --reject-with icmp-port-unreachable"
    ]


def test_removal_deletes_every_chain_and_jump_it_made():
    spec = ServiceSpec("Local", True, ENDPOINTS)
    made = restore_text(SERVICE, "192.168.10.100", "80", "192.168.20.0/24", spec).splitlines()
    removed = removal_text(SERVICE, spec).splitlines()
    chains = {line[1:].split()[0] for line in made if line.startswith(":")}
    assert chains == {line.split()[1] for line in removed if line.startswith("-X ")}
    jumps = {line[3:] for line in made if line.startswith("-I ")}
    assert jumps == {line[3:] for line in removed if line.startswith("-D ")}
