"""The lab the plugin builds and tests: building it (`build`), its nodes (`node`), a run's
life (`run`), whether it is still up (`health`), MetalLB failover (`failover`), and the
workshop's steps layered onto it (`layers`)."""
