"""multitask: one network, many yes/no tasks, unknown labels welcome."""

__version__ = "0.1.0"
