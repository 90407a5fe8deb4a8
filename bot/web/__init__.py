"""The practice's public page with the chat widget (and, later, the staff console)."""
