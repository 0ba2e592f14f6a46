"""Jobs: the record of every provisioning run. The runner and its models come with the engine."""
