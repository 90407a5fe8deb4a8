"""Booking intake calls: availability, validation of answers, storage, and the staff outbox.

The Rasa actions in actions/intake.py are thin glue over these modules.
"""
