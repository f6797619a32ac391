"""The workshop as data, with no podman and no lab: the topology files' model (`topology`)
and the workshop's commands, written once as templates (`commands`)."""
