"""pytest-vlanlb: the 'K8s Service (LoadBalancer) with iptables' workshop as a self-building lab."""

__version__ = "0.1.0"
