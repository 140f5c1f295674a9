"""One module per ``coachcam`` command, each with ``register(subparsers, common)``."""
