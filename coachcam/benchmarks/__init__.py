"""``coachcam bench <name>``: one module per benchmark, each with ``register`` and ``run``."""
