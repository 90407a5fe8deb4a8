"""Load the SafetyClassifier out of a trained Rasa model archive (the same one `rasa run` serves)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage

from bot.safety.component import SafetyClassifier
from bot.settings import PROJECT_ROOT

DEFAULT_MODEL = PROJECT_ROOT / "models" / "assistant.tar.gz"


class ModelError(RuntimeError):
    """The model archive is missing or has no safety component."""


def load_component(model_path: Path = DEFAULT_MODEL) -> SafetyClassifier:
    if not model_path.exists():
        raise ModelError(f"no trained model at {model_path}: run `make train`")
    with tempfile.TemporaryDirectory(prefix="safety-model-") as storage_dir:
        storage, metadata = LocalModelStorage.from_model_archive(Path(storage_dir), model_path)
        for node_name, node in metadata.predict_schema.nodes.items():
            if node.uses is SafetyClassifier and node.resource is not None:
                context = ExecutionContext(metadata.predict_schema, metadata.model_id)
                context.node_name = node_name
                return SafetyClassifier.load(node.config, storage, node.resource, context)
    raise ModelError(f"{model_path} has no {SafetyClassifier.__name__} in its pipeline")
