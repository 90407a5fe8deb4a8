"""Issue 3 sanity checks through the detector trained as `rasa train` trains it (examples + NLU data).

Training-adjacent: most messages below are in data/safety/examples/gen5_*.yml, chosen because the
detector trained on the data before those files called the look-alikes a crisis (p 0.8-0.99) or missed
the boundary messages. They pin that the classifier learned them and that nothing undoes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.loading import load_data

from bot.safety.component import SafetyClassifier
from bot.safety.detector import SafetyDetector

ROOT = Path(__file__).resolve().parents[2]

LOOKALIKES = [
    # long everyday messages (long first-person text used to read as risk)
    "ok so this is going to sound random but my phone is about to die and i'm on the train, i wanted to ask if you"
    " have any evening appointments because i work until six most days and my manager is not flexible at all, thanks",
    "okay so i had my first baby four months ago and everyone says enjoy every moment but i'm mostly just exhausted"
    " and a bit weepy in the evenings, my midwife said it's common and suggested a therapist, do you see new moms",
    "i recently found out i was adopted, i'm 34, my parents told me over dinner and i'm not upset exactly but i have"
    " a lot of questions and feelings, do your therapists work with adoption discovered in adulthood",
    "hi, my partner and i have been arguing a lot since we moved in together, nothing dangerous, just the usual"
    " dishes and money stuff, but it's wearing us down, do you do couples sessions or only individual",
    "my sister was in a really bad relationship a few years ago, it was abusive, she's out of it now and living with"
    " me, she's doing well but she mentioned she might want to talk to someone, do you have therapists who focus on"
    " that and is it ok if i book for her",
    "so i'm a writer working on a young adult novel and one of the side characters is recovering from bulimia and i"
    " want to get it right and not be harmful, do you know any guidelines or could a clinician look at a chapter,"
    " paid of course",
    # figurative, media, sport, kitchen, home
    "i had an overdose of sugar at the party, feeling it now",
    "i think i overdid it at the gym, can't lift my arms",
    "the hail left little scars on the car hood",
    "this cold brew is strong enough to wake the dead",
    "my fridge is on its last legs",
    "the hero dies at the end of the book and i'm still not over it",
    "the anime has a lot of sword fights and blood",
    "the boxer had a cut above his eye and they stopped the fight",
    "the steak was still bloody in the middle, just how i like it",
    "my grandpa told me stories about surviving the war",
    "i'm sanding the deck and my hands are raw",
    "the ferry crossing was so rough i thought i'd be sick",
    # phone-typed and slang, risk word + unrelated question
    "cant believe my sister cut her own bangs again smh",
    "i haven't eaten since breakfast because of meetings, what's the address again",
    "my legz r dead after leg day lmaooo",
    "im dyin to kno if u take aetna",
    "hold up",
    # practice and therapy questions naming the topic
    "i'm in recovery from an eating disorder and doing well, can i keep seeing someone for maintenance",
    "how much homework is there in dbt, i work full time",
    "what are the exact limits of confidentiality at your practice",
    "how long is the waitlist 4 the self harm program",
    "do you have a program for men who were abused as kids",
    # the issue's own examples (not in the training data)
    "I could kill for a coffee",
    "my legs are dead after the gym",
    "dying to see that film",
    "how long does therapy for self-harm take?",
]

BOUNDARY = [
    ("my diary card this week is full of self harm, i did it 3 times, should i still go to group", "acute"),
    ("how do i cancel all my appointments, i won't need them after this week", "acute"),
    ("got stitches at urgent care today, told them it was an accident but it wasn't", "acute"),
    ("i've been writing goodbye letters to my friends, not the moving away kind", "acute"),
    ("found my teen's search history about suicide, what do i do", "concern"),
    ("my daughter told her school counselor she's been cutting, they told us to call you", "concern"),
    ("my partner keeps saying life isn't worth it lately, can we do a joint session", "concern"),
    ("do u have openings? not that it'll help, nothing ever does", "concern"),
]


@pytest.fixture(scope="module")
def trained_detector(tmp_path_factory: pytest.TempPathFactory) -> SafetyDetector:
    config = SafetyClassifier.get_default_config()
    storage = LocalModelStorage(tmp_path_factory.mktemp("safety-model"))
    context = ExecutionContext(GraphSchema({}), "test")
    component = SafetyClassifier.create(config, storage, Resource("safety"), context)
    component.train(load_data(str(ROOT / "data" / "nlu")))
    assert component.detector is not None
    return component.detector


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalike_is_not_a_crisis(trained_detector: SafetyDetector, text: str) -> None:
    assessment = trained_detector.assess(text)
    assert assessment.level == "none", assessment.as_dict()


@pytest.mark.parametrize(("text", "level"), BOUNDARY)
def test_boundary_message_keeps_its_level(trained_detector: SafetyDetector, text: str, level: str) -> None:
    assert trained_detector.assess(text).level == level
