"""Harbor Light assistant: the project's own code (safety, intake, handoff, web)."""
