"""podman, for every mode: finding or starting its API (`api`: podman's REST service, never
called "the service" here, which is the Kubernetes Service), over ssh (`remote`), containers
by exact name (`lookup`), a container's commands (`container`) and the long-lived exec shells
they run in (`exec_shells`)."""
