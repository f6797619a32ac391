"""The ground floor: waiting (tenacity), helper processes tied to pytest's life, and owners
(which process made a thing, and whether it still runs). No podman, no lab."""
