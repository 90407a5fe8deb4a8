"""Production tooling: benchmark, stock-Rasa baseline, production topology (nginx + several Rasa processes)."""
