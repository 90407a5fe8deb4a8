"""Where the safety data lives, and loading it (rules, normalization, labelled examples)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from bot.safety.levels import LEVELS
from bot.settings import PROJECT_ROOT

SAFETY_DATA_DIR = PROJECT_ROOT / "data" / "safety"
RULES_FILE = SAFETY_DATA_DIR / "rules.yml"
NORMALIZE_FILE = SAFETY_DATA_DIR / "normalize.yml"
EXAMPLES_DIR = SAFETY_DATA_DIR / "examples"


def load_yaml(path: Path) -> Dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_rule_documents(data_dir: Path = SAFETY_DATA_DIR) -> Dict[str, Any]:
    """Everything the rules need, as one plain document (persisted inside the trained model)."""
    return {"rules": load_yaml(data_dir / "rules.yml"), "normalize": load_yaml(data_dir / "normalize.yml")}


def example_files(data_dir: Path = SAFETY_DATA_DIR) -> List[Path]:
    return sorted((data_dir / "examples").glob("*.yml"))


def load_examples(data_dir: Path = SAFETY_DATA_DIR) -> List[Tuple[str, str, str]]:
    """(text, level, category) triples from data/safety/examples/*.yml."""
    examples: List[Tuple[str, str, str]] = []
    for path in example_files(data_dir):
        for block in load_yaml(path).get("examples", []):
            level, category = block["level"], block.get("category", path.stem)
            if level not in LEVELS:
                raise ValueError(f"{path}: unknown level {level!r}")
            examples.extend((str(text), level, category) for text in block["texts"])
    return examples


def data_fingerprint(data_dir: Path = SAFETY_DATA_DIR) -> str:
    """Changes whenever a rule, normalization or example file changes (for Rasa's training cache)."""
    digest = hashlib.sha256()
    for path in [data_dir / "rules.yml", data_dir / "normalize.yml", *example_files(data_dir)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
