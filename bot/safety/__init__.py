"""Risk detection: rules plus a trained classifier, one implementation for Rasa and the CLI."""
