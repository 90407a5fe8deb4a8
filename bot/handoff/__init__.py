"""Handoff to intake staff: tickets, notifications, the staff console and the tracker watcher."""
