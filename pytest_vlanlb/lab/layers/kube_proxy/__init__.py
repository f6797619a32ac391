"""kube-proxy for the lab's one Service: what it is told (`spec`), its rule set in each mode
as data (`iptables`, `nftables`), and the change that writes it on every router (`rules`)."""
