"""kube-proxy's rule sets as data, in both modes: chains, the ladder or the numgen map, affinity,
no endpoints."""

from __future__ import annotations

import re

from pytest_vlanlb.lab.layers.kube_proxy import nftables as nft
from pytest_vlanlb.lab.layers.kube_proxy.iptables import chain_names, removal_text, restore_text
from pytest_vlanlb.lab.layers.kube_proxy.spec import ServiceSpec

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


# nftables mode (pkg/proxy/nftables/proxier.go). The rule text is checked by nft itself in
# tests/service; here: the names, and that each element is where kube-proxy puts it.


def nft_lines(spec: ServiceSpec) -> list[str]:
    return nft.ruleset_text(SERVICE, "192.168.10.100", "80", "192.168.20.0/24", spec).splitlines()


def nft_rules(lines: list[str], chain: str) -> list[str]:
    prefix = f"add rule ip kube-proxy {chain} "
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


def test_nft_names_are_kube_proxys_own():
    # The examples in proxier.go's comments: "ULMVA6XW-ns1/svc1/tcp/p80" and
    # "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80".
    names = nft.chain_names("ns1/svc1:p80", ["10.180.0.1:80"])
    assert names["svc"] == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert names["ext"] == "external-ULMVA6XW-ns1/svc1/tcp/p80"
    assert names["svl"] == "local-ULMVA6XW-ns1/svc1/tcp/p80"
    assert names["10.180.0.1:80"] == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert names["affinity 10.180.0.1:80"] == "affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"


def test_nft_one_table_replaced_whole_with_kube_proxys_base_chains():
    lines = nft_lines(ServiceSpec("Cluster", False, ENDPOINTS, "nftables"))
    # add-then-delete first: the whole table is replaced in one transaction, even on a first
    # sync when there is none yet.
    assert lines[:2] == ["add table ip kube-proxy", "delete table ip kube-proxy"]
    assert all(" ip kube-proxy" in line for line in lines)
    hooks = {
        line.split()[4]: line.split("{ ")[1]
        for line in lines
        if line.startswith("add chain") and "hook" in line
    }
    assert hooks["filter-forward"] == "type filter hook forward priority -110 ; }"
    assert hooks["nat-prerouting"] == "type nat hook prerouting priority -100 ; }"
    assert hooks["nat-postrouting"] == "type nat hook postrouting priority 100 ; }"
    assert nft_rules(lines, "services")[0] == "ip daddr . meta l4proto . th dport vmap @service-ips"


def test_nft_cluster_policy_numgen_map_and_masquerade():
    names = nft.chain_names(SERVICE, ENDPOINTS)
    lines = nft_lines(ServiceSpec("Cluster", False, ENDPOINTS, "nftables"))
    assert (
        f"add element ip kube-proxy service-ips {{ 192.168.10.100 . tcp . 80 : goto "
        f"{names['ext']} }}" in lines
    )
    assert nft_rules(lines, names["ext"]) == [
        "jump mark-for-masquerade",
        f"goto {names['svc']}",
    ]
    assert nft_rules(lines, names["svc"]) == [
        "counter numgen random mod 3 vmap { "
        + ", ".join(f"{i} : goto {names[e]}" for i, e in enumerate(ENDPOINTS))
        + " }"
    ]
    for endpoint in ENDPOINTS:
        address = endpoint.split(":")[0]
        assert nft_rules(lines, names[endpoint]) == [
            f"ip saddr {address} jump mark-for-masquerade",
            f"meta l4proto tcp counter dnat to {endpoint}",
        ]
    assert nft_rules(lines, "masquerading") == [
        "mark and 0x4000 == 0 return",
        "mark set mark xor 0x4000",
        "counter masquerade fully-random",
    ]


def test_nft_local_policy_goes_to_the_local_chain_and_short_circuits_pods():
    names = nft.chain_names(SERVICE, ENDPOINTS)
    lines = nft_lines(ServiceSpec("Local", False, ENDPOINTS, "nftables"))
    ext = nft_rules(lines, names["ext"])
    assert (
        ext[0]
        == f'ip saddr 192.168.20.0/24 goto {names["svc"]} comment "short-circuit pod traffic"'
    )
    assert ext[-1] == f"goto {names['svl']}"
    assert "jump mark-for-masquerade" not in ext  # the client's address is kept
    assert nft_rules(lines, names["svl"])[-1].startswith("counter numgen random mod 3 vmap")


def test_nft_affinity_sets_are_checked_before_numgen_and_updated_before_dnat():
    names = nft.chain_names(SERVICE, ENDPOINTS)
    lines = nft_lines(ServiceSpec("Cluster", True, ENDPOINTS, "nftables"))
    for endpoint in ENDPOINTS:
        affinity = names[f"affinity {endpoint}"]
        assert (
            f"add set ip kube-proxy {affinity} "
            "{ type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }" in lines
        )
        assert nft_rules(lines, names[endpoint])[1] == f"update @{affinity} {{ ip saddr }}"
    policy = nft_rules(lines, names["svc"])
    assert policy[:3] == [
        f"ip saddr @{names[f'affinity {e}']} counter goto {names[e]}" for e in ENDPOINTS
    ]
    assert policy[3].startswith("counter numgen random mod 3 vmap")


def test_nft_no_endpoints_goes_to_the_reject_chain_and_writes_no_service_chains():
    lines = nft_lines(ServiceSpec("Cluster", False, (), "nftables"))
    assert (
        "add element ip kube-proxy no-endpoint-services "
        f'{{ 192.168.10.100 . tcp . 80 comment "{SERVICE}" : goto reject-chain }}' in lines
    )
    assert nft_rules(lines, "reject-chain") == ["counter reject"]
    assert not any("service-ips {" in line and "element" in line for line in lines)
    assert not any(re.search(r" (endpoint|service)-[A-Z2-7]{8}-|numgen", line) for line in lines)


def test_nft_balance_rule_can_be_written_wrong_on_purpose():
    names = nft.chain_names(SERVICE, ENDPOINTS)
    assert nft.balance_rule(names, ENDPOINTS[:2], modulus=3) == (
        f"counter numgen random mod 3 vmap {{ 0 : goto {names[ENDPOINTS[0]]}, "
        f"1 : goto {names[ENDPOINTS[1]]} }}"
    )
