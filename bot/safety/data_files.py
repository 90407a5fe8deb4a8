"""Where the safety data lives, and loading it (rules, normalization, labelled examples)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from bot.safety.levels import LEVELS, RISK_INTENTS
from bot.settings import PROJECT_ROOT

SAFETY_DATA_DIR = PROJECT_ROOT / "data" / "safety"
RULES_FILE = SAFETY_DATA_DIR / "rules.yml"
NORMALIZE_FILE = SAFETY_DATA_DIR / "normalize.yml"
EXAMPLES_DIR = SAFETY_DATA_DIR / "examples"
NLU_LEVELS_FILE = "nlu_levels.yml"
LEVEL_OF_INTENT = {intent: level for level, intent in RISK_INTENTS.items()}


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


def load_nlu_levels(data_dir: Path = SAFETY_DATA_DIR) -> Dict[str, str]:
    """NLU example text → the risk level the detector gives it by design (data/safety/nlu_levels.yml)."""
    levels: Dict[str, str] = {}
    for level, texts in (load_yaml(data_dir / NLU_LEVELS_FILE).get("levels") or {}).items():
        if level not in LEVELS:
            raise ValueError(f"{NLU_LEVELS_FILE}: unknown level {level!r}")
        for text in texts:
            if str(text) in levels:
                raise ValueError(f"{NLU_LEVELS_FILE}: {text!r} is listed twice")
            levels[str(text)] = level
    return levels


def nlu_example_level(text: str, intent: str | None, nlu_levels: Dict[str, str]) -> str:
    """The level the safety classifier learns for an NLU example.

    risk_* intents give their level; an ask_* example that discloses self-harm ("my son is cutting
    himself") gets its level from nlu_levels.yml, because the detector answers it as risk by design and
    learning it as `none` would teach the classifier the opposite; everything else is `none`.
    """
    return LEVEL_OF_INTENT.get(intent or "") or nlu_levels.get(text, "none")


def data_fingerprint(data_dir: Path = SAFETY_DATA_DIR) -> str:
    """Changes whenever a rule, normalization or example file changes (for Rasa's training cache)."""
    digest = hashlib.sha256()
    fixed = [data_dir / "rules.yml", data_dir / "normalize.yml", data_dir / NLU_LEVELS_FILE]
    for path in [*fixed, *example_files(data_dir)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
