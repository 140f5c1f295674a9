"""coachcam: the software of a teacher-following classroom camera robot.

This package is kept light on import: heavy libraries (mediapipe, av, cv2, matplotlib)
are imported lazily where they are used.
"""

__version__ = "0.1.0"
