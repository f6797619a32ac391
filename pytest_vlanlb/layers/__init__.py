"""The workshop's steps as layers: data (what changes where) plus apply and revert.

A layer is a list of steps. Each step is a template over the lab's facts ({public_if},
{vip}, ...), rendered against the running lab, so the same data works whatever the router's
interfaces are called. Reverting runs the steps' inverses in reverse order and leaves the lab
as it was, so any combination can be composed on one lab without rebuilding it.

- `catalog`: the layers themselves, the one place the workshop's commands are written;
- `steps`: the kinds of step (an iptables rule, an address) and the lab facts they render;
- `webserver`: the pod's greeting server, and the client addresses it saw;
- `engine`: runs steps with one exec per node, nodes at the same time;
- `state`: the router's base state, checked after every revert;
- `stack`: the layers applied to one lab for one test.
"""

from .catalog import FIREWALL_VARIANTS, LAYERS, ORDER, SERVICE_VARIANTS, Layer, layer, ordered
from .stack import LayerStack
from .steps import lab_facts
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
