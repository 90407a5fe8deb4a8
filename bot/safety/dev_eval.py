"""Cross-validated figures on the team's own labelled examples (data/safety/examples).

For each of 5 folds the classifier is trained on the other folds; the rules need no training. Prints
recall per category, the false-crisis rate on `none` examples, how recall and false alarms of the
classifier ALONE move with its threshold (how the threshold in config.yml was chosen), and two level
confusion matrices on the risk examples: the detector's final level, and the level model's own pick.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np
from sklearn.model_selection import StratifiedKFold

from bot.safety.classifier import RiskClassifier
from bot.safety.data_files import load_examples, load_nlu_levels, load_rule_documents, nlu_example_level
from bot.safety.detector import SafetyDetector, classifier_may_raise
from bot.safety.levels import LEVELS, highest, rank

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.92)
FOLDS = 5
RISK_LEVELS = LEVELS[1:]


def level_confusion(labelled: Sequence[str], predicted: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """Counts per (labelled risk level, predicted level); `none` examples are left out."""
    table = {level: {column: 0 for column in LEVELS} for level in RISK_LEVELS}
    for truth, guess in zip(labelled, predicted, strict=True):
        if truth != "none":
            table[truth][guess] += 1
    return table


def format_confusion(title: str, table: Dict[str, Dict[str, int]]) -> List[str]:
    """Rows: labelled level; columns: predicted level; then recall (flagged at all) and exact level."""
    lines = [title, "  labelled \\ got " + "".join(f"{column:>10}" for column in LEVELS) + "    flagged  exact level"]
    for level, row in table.items():
        total = sum(row.values())
        flagged = total - row["none"]
        exact = row[level]
        rates = f"{100 * flagged / total:8.1f}% {100 * exact / total:8.1f}%" if total else "       -        -"
        lines.append(f"  {level:15}" + "".join(f"{row[column]:10}" for column in LEVELS) + "  " + rates)
    return lines


def nlu_examples() -> List[Tuple[str, str, str]]:
    """The NLU training examples, labelled as the component labels them during `rasa train`."""
    from rasa.shared.nlu.training_data.loading import load_data

    from bot.settings import PROJECT_ROOT

    data = load_data(str(PROJECT_ROOT / "data" / "nlu"))
    nlu_levels = load_nlu_levels()
    examples: List[Tuple[str, str, str]] = []
    for example in data.intent_examples:
        text, intent = example.get("text"), example.get("intent")
        examples.append((text, nlu_example_level(text, intent, nlu_levels), f"nlu:{intent}"))
    return examples


def run_dev_eval() -> int:
    examples = load_examples() + nlu_examples()
    documents = load_rule_documents()
    rules_only = SafetyDetector.from_documents(documents)
    normalized = [rules_only.rules.normalize(text) for text, _, _ in examples]
    levels = np.array([level for _, level, _ in examples])
    rule_assessments = rules_only.assess_many([t for t, _, _ in examples])
    rule_levels = [assessment.level for assessment in rule_assessments]
    probabilities = np.zeros(len(examples))
    classifier_levels = ["none"] * len(examples)
    level_model_picks = ["none"] * len(examples)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=7)
    for train_index, test_index in folds.split(normalized, levels):
        classifier = RiskClassifier.train([normalized[i] for i in train_index], levels[train_index].tolist())
        predictions = classifier.predict([normalized[i] for i in test_index])
        for i, pick in zip(test_index, classifier.level_picks([normalized[i] for i in test_index]), strict=True):
            level_model_picks[i] = pick
        for i, prediction in zip(test_index, predictions, strict=True):
            probabilities[i] = prediction.risk_probability
            held = not classifier_may_raise(rule_levels[i], rule_assessments[i].means_adjacent, probabilities[i])
            classifier_levels[i] = "none" if held else prediction.level
            if held:
                probabilities[i] = 0.0  # the threshold table below counts what the detector would flag
    by_category: Dict[Tuple[str, str], List[int]] = defaultdict(lambda: [0, 0])
    ok: bool
    for (_text, level, category), rule_level, clf_level in zip(examples, rule_levels, classifier_levels, strict=True):
        final = highest(rule_level, clf_level)
        ok = final == "none" if level == "none" else final != "none"
        by_category[(level, category)][0] += 1
        by_category[(level, category)][1] += int(ok)
    print(f"{FOLDS}-fold cross-validation on {len(examples)} of the team's own examples (rules + classifier)")
    merged: Dict[Tuple[str, str], List[int]] = defaultdict(lambda: [0, 0])
    for (level, category), (count, correct) in list(by_category.items()):
        if category.startswith("nlu:") and not category.startswith("nlu:risk_"):
            # one line per level: `none` (other intents) and the disclosures listed in nlu_levels.yml
            key = (level, "nlu:other intents" if level == "none" else "nlu:ask_* disclosures")
            merged[key][0] += count
            merged[key][1] += correct
            del by_category[(level, category)]
    by_category.update(merged)
    ordered = sorted(by_category.items(), key=lambda item: (-rank(item[0][0]), item[0]))
    for (level, category), (count, passed) in ordered:
        print(f"  {level:9} {category:28} {passed:4}/{count:<4} {100 * passed / count:6.1f}%")
    risky = levels != "none"
    rule_flagged = np.array([level != "none" for level in rule_levels])
    print("by classifier threshold: classifier alone | rules OR classifier (recall on risk / false crisis on none)")
    for threshold in THRESHOLDS:
        flagged = probabilities >= threshold
        union = flagged | rule_flagged
        print(
            f"  threshold {threshold:.2f}: alone recall {flagged[risky].mean() * 100:5.1f}%"
            f" false {flagged[~risky].mean() * 100:5.1f}%"
            f"  |  union recall {union[risky].mean() * 100:5.1f}% false {union[~risky].mean() * 100:5.1f}%"
        )
    finals = [highest(r, c) for r, c in zip(rule_levels, classifier_levels, strict=True)]
    imminent = [f == "imminent" for f, level in zip(finals, levels, strict=True) if level == "imminent"]
    rules_recall = np.mean([r != "none" for r, level in zip(rule_levels, levels, strict=True) if level != "none"]) * 100
    print(f"rules alone: recall {rules_recall:.1f}%  |  imminent rated imminent: {100 * np.mean(imminent):.1f}%")
    labelled = levels.tolist()
    detector_table = level_confusion(labelled, finals)
    for line in format_confusion("level confusion, detector (rules + classifier at the threshold):", detector_table):
        print(line)
    # The level model alone, on every risk example (it only speaks for flagged ones in the detector).
    model_table = level_confusion(labelled, level_model_picks)
    for line in format_confusion("level confusion, level model's own pick (risk examples):", model_table):
        print(line)
    return 0
