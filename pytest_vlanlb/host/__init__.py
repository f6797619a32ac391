"""This machine: what it must have (`preflight`, `setup`), the images built on it (`image`),
the links the lab's VLANs are made of (`wires`), run names and labels (`naming`), and the sweep
of what dead runs left (`sweep`)."""
