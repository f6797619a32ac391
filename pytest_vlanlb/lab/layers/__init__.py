"""The workshop's steps as layers: data (what changes where) plus apply and revert.

A layer is a list of changes. Each change is a template over the lab's facts ({public_if},
{vip}, ...), rendered against the running lab, so the same data works whatever the router's
interfaces are called. Reverting runs the changes' inverses in reverse order and leaves the
lab as it was, so any combination can be composed on one lab without rebuilding it.

- `catalog`: the layers themselves, each a workshop step (model/commands.py writes its
  commands) with its Kubernetes counterpart;
- `changes`: the kinds of change (an iptables rule, an address) and the lab facts they render
  (the rules' and addresses' own commands are model/commands.py's);
- `webserver`: the pod's greeting server, and the client addresses it saw;
- `engine`: runs changes with one exec per node, nodes at the same time;
- `state`: the router's base state, checked after every revert;
- `stack`: the layers applied to one lab for one test.
"""

from .catalog import FIREWALL_VARIANTS, LAYERS, ORDER, SERVICE_VARIANTS, Layer, layer, ordered
from .changes import lab_facts
from .stack import LayerStack
from .webserver import hex_to_ipv4, peers_seen

__all__ = [
    "FIREWALL_VARIANTS",
    "LAYERS",
    "ORDER",
    "SERVICE_VARIANTS",
    "Layer",
    "LayerStack",
    "hex_to_ipv4",
    "lab_facts",
    "layer",
    "ordered",
    "peers_seen",
]
