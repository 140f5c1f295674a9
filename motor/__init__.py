"""desired pointing in → controller → servo driver (gpio | serial | sim) → limits, calibration."""
