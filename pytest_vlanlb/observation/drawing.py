"""The lab drawn: a topology as a Graphviz graph (VLANs, nodes, their interfaces and
addresses, the VIP on its holder, the Service's backends), labelled in English or Japanese.

Readable in black and white: what matters is written, never only coloured. The interface
names are podman's, in creation order (the first network is eth0, each one connected after
it the next), which is how the topology files are written (`topologies/basic.yaml`).
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..host.graphviz import render_svg
from ..model.topology import UPLINK, NodeSpec, Role, Topology
from .walk import Walk
from .words import Catalogued, Words

EN = {
    "title": "topology {name}: {description}",
    "segment": "VLAN {vlan} · {name}\n{subnet}\ngateway {gateway}",
    "uplink": "uplink\n(podman's network, NAT to the host)",
    "role.router": "router",
    "role.router.forwarding": "router (forwards IPv4)",
    "role.client": "client",
    "role.pod": "pod",
    "answers": "answers '{greeting}' on :{port}",
    "vip": "VIP {vip} (Step 3)",
    "vip.leader": "VIP {vip} (Step 3; moves on failover)",
    "service": "Service: {vip}:{port} → {backends}",
    "walk.title": "where the packets went, as {router}'s counters saw them",
    "walk.sent": "sent",
    "walk.routing": "routing decision",
    "walk.routing.nothing": "(no counter here)",
    "walk.stopped.drop": "✗ DROPPED HERE",
    "walk.stopped.reject": "✗ REJECTED HERE (an error went back)",
    "walk.answered": "an answer came back",
    "walk.no_answer": "no answer\n(lost where no counter counts: ARP, or past the router)",
    "walk.not_reached": "(not reached)",
}
JA = {
    "title": "トポロジー {name}: {description}",
    "segment": "VLAN {vlan} · {name}\n{subnet}\nゲートウェイ {gateway}",
    "uplink": "アップリンク\n(podman のネットワーク、ホストへ NAT)",
    "role.router": "ルーター",
    "role.router.forwarding": "ルーター (IPv4 転送あり)",
    "role.client": "クライアント",
    "role.pod": "Pod",
    "answers": ":{port} で '{greeting}' と応答",
    "vip": "VIP {vip} (Step 3)",
    "vip.leader": "VIP {vip} (Step 3、フェイルオーバーで移動)",
    "service": "Service: {vip}:{port} → {backends}",
    "walk.title": "パケットの行き先 ({router} のカウンターによる)",
    "walk.sent": "送信",
    "walk.routing": "ルーティング判断",
    "walk.routing.nothing": "(ここにカウンターなし)",
    "walk.stopped.drop": "✗ ここで破棄",
    "walk.stopped.reject": "✗ ここで拒否 (エラーを返送)",
    "walk.answered": "応答が返った",
    "walk.no_answer": "応答なし\n(カウンターのない所で消えた: ARP、またはルーターの先)",
    "walk.not_reached": "(到達せず)",
}


class Labels(Catalogued):
    """The picture's words in one language."""

    catalogues: ClassVar = {"en": EN, "ja": JA}


def topology_dot(topology: Topology, language: str = "en") -> str:
    """The topology as Graphviz DOT text (`dot -Tsvg` draws it)."""
    say = Labels(language)
    service = topology.service
    vip_segment = topology.segment_of(service.vip)
    description = textwrap.fill(" ".join(topology.description.split()), 90)
    title = say("title", name=topology.name, description=f"\n{description}")
    lines = [
        "graph lab {",
        f"  graph [rankdir=LR, fontname=sans, fontsize=11, labelloc=t, label={_quote(title)}];",
        "  node [fontname=sans, fontsize=10, shape=box];",
        "  edge [fontname=sans, fontsize=9];",
    ]
    for segment in topology.segments.values():
        label = say(
            "segment", vlan=segment.vlan, name=segment.name, subnet=segment.subnet,
            gateway=segment.gateway,
        )  # fmt: skip
        lines.append(f"  {_id('segment', segment.name)} [shape=ellipse, label={_quote(label)}];")
    if any(i.segment == UPLINK for n in topology.nodes.values() for i in n.interfaces):
        lines.append(
            f"  {_id('segment', UPLINK)} [shape=ellipse, style=dashed, "
            f"label={_quote(say('uplink'))}];"
        )
    # The VIP is on the first router's leg in its segment (MetalLB's leader at start).
    leader = topology.routers[0].name
    vip = say("vip.leader" if len(topology.routers) > 1 else "vip", vip=service.vip)
    depth = _depths(topology)
    for node in topology.nodes.values():
        shape = ", peripheries=2" if node.role is Role.ROUTER else ""
        label = _quote(_node_label(node, topology, say))
        lines.append(f"  {_id('node', node.name)} [label={label}{shape}];")
        for index, interface in enumerate(node.interfaces):
            words = [f"eth{index}"]
            if interface.address is not None:
                words.append(str(interface.address))
            if node.name == leader and interface.segment == vip_segment:
                words.append(f"\n{vip}")
            style = "style=dashed, " if interface.segment == UPLINK else ""
            ends = [_id("node", node.name), _id("segment", interface.segment)]
            if depth.get(("segment", interface.segment), 0) < depth.get(("node", node.name), 0):
                ends.reverse()  # drawn from the client outwards: a, VLAN 10, router, VLAN 20, b
            lines.append(f"  {ends[0]} -- {ends[1]} [{style}label={_quote(' '.join(words))}];")
    backends = ", ".join(f"{b.node} {b.address}:{b.port}" for b in service.backends)
    label = say("service", vip=service.vip, port=service.port, backends=backends)
    lines.append(f"  service [shape=note, label={_quote(label)}];")
    lines.append(f"  {_id('segment', vip_segment)} -- service [style=dotted];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _depths(topology: Topology) -> dict[tuple[str, str], int]:
    """How far each node and segment is from the client (breadth first), so that the picture
    reads left to right the way a's packets go."""
    depth = {("node", topology.client.name): 0}
    frontier = [("node", topology.client.name)]
    while frontier:
        following = []
        for kind, name in frontier:
            if kind == "node":
                near = [("segment", i.segment) for i in topology.nodes[name].interfaces]
            else:
                near = [
                    ("node", n.name)
                    for n in topology.nodes.values()
                    if any(i.segment == name for i in n.interfaces)
                ]
            for item in near:
                if item not in depth:
                    depth[item] = depth[(kind, name)] + 1
                    following.append(item)
        frontier = following
    return depth


def _node_label(node: NodeSpec, topology: Topology, say: Labels) -> str:
    if node.role is Role.ROUTER:
        role = say("role.router.forwarding" if node.forwarding else "role.router")
    else:
        role = say(f"role.{node.role.value}")
    lines = [node.name, role]
    lines += [
        say("answers", greeting=b.greeting, port=b.port)
        for b in topology.service.backends
        if b.node == node.name
    ]
    return "\n".join(lines)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _id(kind: str, name: str) -> str:
    return _quote(f"{kind}:{name}")


def _quote(text: str) -> str:
    """A DOT string of any text: backslashes and quotes escaped, line breaks as DOT's, other
    control characters (a rule's comment may hold them; XML may not) shown as U+FFFD."""
    text = _CONTROL.sub("\ufffd", text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def said_walk(walk: Walk, language: str = "en") -> dict[str, Any]:
    """A walk said in one language, as plain data (a record's JSON carries it): the router,
    what was sent, each station's hook, facts and what stopped the packets there (`drop`,
    `reject` or ""), and how it
    ended (`answered`, `not-reached` or `no-answer`)."""
    words = Words(language)
    return {
        "language": language,
        "router": walk.router,
        "sent": [_result(words, r) for r in walk.probes],
        "stations": [
            {"hook": s.hook, "facts": [words.fact(f) for f in s.facts], "stopped": s.stopped}
            for s in walk.stations
        ],
        "end": walk.end,
    }


def walk_dot(walk: Walk, language: str = "en") -> str:
    """A walk as Graphviz DOT (`said_walk_dot` of the walk said in `language`)."""
    return said_walk_dot(said_walk(walk, language), language)


def said_walk_dot(said: Mapping[str, Any], language: str = "en") -> str:
    """A said walk as Graphviz DOT: what was sent, each hook with the rules that counted the
    packets (the dropping one marked and boxed twice), then the answer, or where it ended."""
    say = Labels(language)
    lines = [
        "digraph walk {",
        "  graph [rankdir=LR, fontname=sans, fontsize=11, labelloc=t, "
        f"label={_quote(say('walk.title', router=said['router']))}];",
        "  node [fontname=sans, fontsize=10, shape=box];",
    ]
    sent = [say("walk.sent"), *(_wrap(r) for r in said["sent"])]
    lines.append(f"  sent [label={_quote(chr(10).join(sent))}];")
    previous = "sent"
    for index, station in enumerate(said["stations"]):
        facts = [_wrap(f) for f in station["facts"]]
        if station["hook"] == "ROUTING":
            facts = facts or [say("walk.routing.nothing")]
            head = f"ROUTING ({say('walk.routing')})"
        else:
            head = station["hook"]
        if station["stopped"]:
            head = f"{head}\n{say('walk.stopped.' + station['stopped'])}"
        style = ", peripheries=2, style=bold" if station["stopped"] else ""
        label = "\n".join([head, *facts])
        lines.append(f"  s{index} [label={_quote(label)}{style}];")
        lines.append(f"  {previous} -> s{index};")
        previous = f"s{index}"
    # Several probes observed together may part ways: a drop for one, an answer for another.
    end = {"answered": "walk.answered", "not-reached": "walk.not_reached"}.get(
        said["end"], "walk.no_answer"
    )
    shape = "style=dashed" if said["end"] == "not-reached" else "shape=ellipse"
    lines.append(f"  end [{shape}, label={_quote(say(end))}];")
    dashed = " [style=dashed]" if said["end"] == "not-reached" else ""
    lines.append(f"  {previous} -> end{dashed};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _result(words: Words, result: object) -> str:
    """A probe's result in words (a ping's or a request's), or as it says itself."""
    if hasattr(result, "received"):
        return words.ping(result)  # type: ignore[arg-type]
    if hasattr(result, "outcome"):
        return words.http(result)  # type: ignore[arg-type]
    return str(result)


def _wrap(text: str, width: int = 60) -> str:
    """Lines of about `width`, never breaking inside a `quoted rule` (it is read as typed)."""
    lines: list[str] = []
    for word in re.findall(r"`[^`]*`\S*|\S+", text):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def write_walks(walks: Sequence[Walk], folder: Path, name: str, language: str) -> list[Path]:
    """Each walk drawn as `folder/NAME-N.svg` (NAME made safe for a file name); the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]  # two long names cut alike differ
    stem = (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "walk") + f"-{digest}"
    paths = []
    for number, walk in enumerate(walks, 1):
        path = folder / f"{stem}-{number}.svg"
        path.write_text(render_svg(walk_dot(walk, language)), encoding="utf-8")
        paths.append(path)
    return paths


def walks_drawn(walks: Sequence[Walk], folder: Path, name: str, language: str) -> str:
    """A failure's walks drawn (`write_walks`): their paths, one a line, or why they were not
    (a drawing that fails must never turn a failure into an internal error)."""
    try:
        paths = write_walks(walks, folder, name, language)
    except Exception as exc:
        return f"not drawn: {exc}"
    return "\n".join(str(p) for p in paths)
