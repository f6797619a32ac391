#!/usr/bin/env bash
# The workshop (BASE_LAB.md, then k8s_lb_ja.md Steps 1-6 and its cleanup) as a plain
# podman-CLI script: the baseline bench/run.py times against the plugin's suite. Written for
# the benchmark only. It checks the same claims a careful person would, with the workshop's
# commands, adding just enough (-W/-m timeouts, -t 0 on rm) for it to end promptly.
# Usage: workshop_plain.sh IMAGE    (as root; makes its own veth wires, never a host NIC)
set -euo pipefail
IMG=$1
P=vlbplain
U=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
fail=0
check() { # check "what" expected-rc command...
    local what=$1 want=$2; shift 2
    if "$@" >/dev/null 2>&1; then got=0; else got=$?; fi
    if { [ "$want" = ok ] && [ $got -eq 0 ]; } || { [ "$want" = fail ] && [ $got -ne 0 ]; }; then
        echo "ok   $what"
    else
        echo "FAIL $what (exit $got)"; fail=1
    fi
}
cleanup() {
    podman rm -f -t 0 $P-a $P-b $P-router >/dev/null 2>&1 || true
    podman network rm $P-net10 $P-net20 >/dev/null 2>&1 || true
    ip link del ${P}10 2>/dev/null || true
    ip link del ${P}20 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# vlan_ja.md Steps 1-5, on veth wires instead of the host NIC's VLAN sub-interfaces
for v in 10 20; do
    ip link add ${P}$v type veth peer name ${P}${v}p
    ip link set ${P}$v up; ip link set ${P}${v}p up
    podman network create --driver macvlan --subnet 192.168.$v.0/24 --gateway 192.168.$v.1 \
        -o parent=${P}$v $P-net$v >/dev/null
done
podman run -d --name $P-router --network podman --cap-add NET_ADMIN --cap-add NET_RAW \
    --sysctl net.ipv4.ip_forward=1 "${U[@]}" "$IMG" sleep infinity >/dev/null
podman network connect --ip 192.168.10.1 $P-net10 $P-router
podman network connect --ip 192.168.20.1 $P-net20 $P-router
podman run -d --name $P-a --network $P-net10 --ip 192.168.10.10 --cap-add NET_RAW "${U[@]}" \
    "$IMG" sleep infinity >/dev/null
podman run -d --name $P-b --network $P-net20 --ip 192.168.20.20 --cap-add NET_RAW "${U[@]}" \
    "$IMG" sleep infinity >/dev/null

# vlan_ja.md Step 6
check "a pings b" ok podman exec $P-a ping -c 2 192.168.20.20
check "b pings a" ok podman exec $P-b ping -c 2 192.168.10.10

# k8s_lb_ja.md Step 1
podman exec -d $P-b busybox sh -c "while true; do echo -e 'HTTP/1.1 200 OK\n\nHello from Pod B' | nc -l -p 80; done" >/dev/null
sleep 0.5
check "a reaches b's web server" ok podman exec $P-a curl -s -m 2 http://192.168.20.20
# Step 2
podman exec $P-router iptables -I FORWARD -i eth1 -o eth2 -j DROP
check "a cannot ping b" fail podman exec $P-a ping -c 2 -W 1 192.168.20.20
check "a cannot reach b's web server" fail podman exec $P-a curl -s -m 2 http://192.168.20.20
# Steps 3-5
podman exec $P-router ip addr add 192.168.10.100/32 dev eth1
podman exec $P-router iptables -t nat -A PREROUTING -d 192.168.10.100 -p tcp --dport 80 \
    -j DNAT --to-destination 192.168.20.20:80
podman exec $P-router iptables -t nat -A POSTROUTING -d 192.168.20.20 -p tcp --dport 80 \
    -j MASQUERADE
# Step 6 as written: the DROP rule also drops the DNAT'ed packets
check "VIP times out with Step 2 as written" fail podman exec $P-a curl -s -m 2 http://192.168.10.100
# ... and with the corrected rule it answers
podman exec $P-router iptables -D FORWARD -i eth1 -o eth2 -j DROP
podman exec $P-router iptables -I FORWARD -i eth1 -o eth2 -m conntrack ! --ctstate DNAT -j DROP
out=$(podman exec $P-a curl -s -m 2 http://192.168.10.100 || true)
if [ "$out" = "Hello from Pod B" ]; then echo "ok   VIP says Hello from Pod B"; else echo "FAIL VIP: '$out'"; fail=1; fi
check "a still cannot ping b" fail podman exec $P-a ping -c 2 -W 1 192.168.20.20
# cleanup of the workshop
podman exec $P-router iptables -D FORWARD -i eth1 -o eth2 -m conntrack ! --ctstate DNAT -j DROP
check "after cleanup a pings b" ok podman exec $P-a ping -c 2 192.168.20.20

[ "${FULL:-}" = 1 ] || exit $fail
# FULL=1: the same truth table as tests/lab/test_workshop.py, one podman command at a time,
# with the suite's timeouts (0.3 s for probes that must fail), for a same-work comparison.
podman exec $P-router ip addr del 192.168.10.100/32 dev eth1
podman exec $P-router iptables -t nat -F
pkill_web() { # everything but PID 1 (sleep) and this shell: the server loop and its nc
    podman exec $P-b busybox sh -c 'for p in /proc/[0-9]*; do n=${p#/proc/}; [ $n = 1 ] || [ $n = $$ ] || kill $n 2>/dev/null; done; true'
}
pkill_web
layer() { # layer NAME add|del
    local op=$1 name=$2 f=-A d=add
    [ "$op" = del ] && { f=-D; d=del; }
    case $name in
    webserver) if [ "$op" = add ]; then podman exec -d $P-b busybox sh -c "while true; do echo -e 'HTTP/1.1 200 OK\n\nHello from Pod B' | nc -l -p 80; done" >/dev/null; sleep 0.3; else pkill_web; fi ;;
    firewall:workshop) podman exec $P-router iptables ${f/-A/-I} FORWARD -i eth1 -o eth2 -j DROP ;;
    firewall:dnat-aware) podman exec $P-router iptables ${f/-A/-I} FORWARD -i eth1 -o eth2 -m conntrack ! --ctstate DNAT -j DROP ;;
    firewall:none) ;;
    vip) podman exec $P-router ip addr $d 192.168.10.100/32 dev eth1 ;;
    dnat) podman exec $P-router iptables -t nat $f PREROUTING -d 192.168.10.100 -p tcp --dport 80 -j DNAT --to-destination 192.168.20.20:80 ;;
    snat) podman exec $P-router iptables -t nat $f POSTROUTING -d 192.168.20.20 -p tcp --dport 80 -j MASQUERADE ;;
    esac
}
row() { # row "LAYERS" VIP(ok|refused|timeout) DIRECT(yes|no)
    local layers=$1 vip=$2 direct=$3 got
    for l in $layers; do layer add $l; done
    got=$(podman exec $P-a curl -s -m 0.3 -o /dev/null -w '%{http_code}' http://192.168.10.100; echo " $?")
    # No owner for the VIP: curl times out while a's ARP is pending, or fails at once (7,
    # EHOSTUNREACH) once an earlier row's resolution has failed; both are "no answer".
    case "$vip:$got" in ok:"200 0"|refused:"000 7"|timeout:"000 28"|timeout:"000 7") echo "ok   [$layers] VIP $vip" ;; *) echo "FAIL [$layers] VIP $vip: $got"; fail=1 ;; esac
    if [ "$direct" = yes ]; then
        check "[$layers] a pings b" ok podman exec $P-a ping -c 1 -W 2 192.168.20.20
    else
        check "[$layers] a cannot ping b" fail podman exec $P-a ping -c 2 -i 0.1 -W 0.3 192.168.20.20
        check "[$layers] a cannot reach b" fail podman exec $P-a curl -s -m 0.3 http://192.168.20.20
    fi
    for l in $(echo $layers | tr " " "\n" | tac); do layer del $l; done
}
row "webserver" timeout yes
row "webserver vip" refused yes
row "webserver vip dnat" ok yes
row "webserver vip dnat snat" ok yes
row "webserver firewall:workshop" timeout no
row "webserver firewall:dnat-aware" timeout no
row "webserver firewall:none vip dnat snat" ok yes
row "webserver firewall:workshop vip dnat snat" timeout no
row "webserver firewall:workshop vip dnat" timeout no
row "webserver firewall:dnat-aware vip dnat snat" ok no
row "webserver firewall:dnat-aware vip dnat" ok no
row "vip dnat snat" refused yes
row "firewall:dnat-aware vip dnat snat" refused no
row "firewall:workshop vip dnat snat" timeout no
exit $fail
