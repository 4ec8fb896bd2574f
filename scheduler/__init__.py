"""The service and its command line: scheduling, configuration (the only reader of the environment), health."""
