"""The simulated classroom: scenarios, a body model, oracle perception, a simulated camera."""
