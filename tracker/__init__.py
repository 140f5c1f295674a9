"""frames in → people (pose) → which one is the teacher → where the camera should point."""
