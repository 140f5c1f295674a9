"""Frame sources, H.264 encoding, publishing to the coach, local recording."""
