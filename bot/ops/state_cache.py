"""The policies' featurised states of a conversation, computed once per tracker and extended event by event.

Why: RulePolicy and MemoizationPolicy ask for the states of the whole conversation (Rasa's
`Domain.states_for_tracker_history`) several times per predicted action, with a few different flag
combinations, and Rasa replays every event of the conversation from scratch each time (a fresh
tracker with copies of all ~45 slots, `applied_events`, one state per action): ~19% of the server's
CPU under load (cProfile, our load scripts).

Here each tracker object keeps, per flag combination, where Rasa's loop had got to: the events it
consumed, the replayed tracker, the states of finished turns and the loop's two variables. A later call
on the same tracker only walks the events appended since. It falls back to Rasa's full computation
whenever the new events could change what came before:
- a rewind or reset (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted);
- an ActiveLoop naming a loop not seen before (Rasa treats earlier executions of that action differently);
- a loop action executed again on its happy path (Rasa removes the previous loop turn's events);
- the tracker's event list replaced or capped (`max_event_history`), or a different domain or flags.
The last state (after the newest event) is provisional and recomputed on each call, as in Rasa.

Callers may change the states they are given (Rasa's featurizers delete keys), so every call returns new
dicts, sharing sub-dicts between states exactly where Rasa's own result shares them.
The states are compared with Rasa's on every prefix of every story and rule (tests/ops/test_state_cache.py).

Progress also carries over from one message to the next (without it, each message's new tracker started
from the first event again, for each flag combination: ~2.4 full computations per message). When the
tracker store keeps a snapshot of a saved tracker (bot/ops/tracker_cache.py), `carry_progress` moves the
saved tracker's progress onto the snapshot's events, and the next tracker of that conversation whose events
begin with the very same event objects (a copy of the snapshot) takes that progress over.

`DialogueStateTracker.applied_events` (the events left after rewinds, walked from the first event) is
also kept per tracker while its events are unchanged: it is asked for by each flag combination above and
by RulePolicy, several times per predicted action. Each call still gets a list of its own.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple

from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker

REWINDS = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted)

StatesFunction = Callable[..., List[State]]


@dataclass
class _Progress:
    """How far Rasa's loop over one tracker's history has got (see `Domain.states_for_tracker_history`)."""

    domain: Domain
    rule_only_data: Dict[str, Any] | None
    events: Any  # the tracker's own deque: a replaced deque means a different history
    consumed: int
    first_event: Event | None
    last_event: Event | None
    loop_names: set
    applied: List[Event]
    replay: DialogueStateTracker
    states: List[State] = field(default_factory=list)
    last_ml_action: Any = None
    turn_was_hidden: bool = False


# Per live tracker (by id, checked through a weak reference): its progress per flag combination.
_PROGRESS: Dict[int, Tuple[weakref.ref[DialogueStateTracker], Dict[Tuple[bool, bool], _Progress]]] = {}


def _progress_of(tracker: DialogueStateTracker) -> Dict[Tuple[bool, bool], _Progress]:
    entry = _PROGRESS.get(id(tracker))
    if entry is not None and entry[0]() is tracker:
        return entry[1]
    key = id(tracker)
    reference = weakref.ref(tracker, lambda _ref: _PROGRESS.pop(key, None))
    progress: Dict[Tuple[bool, bool], _Progress] = {}
    _PROGRESS[key] = (reference, progress)
    return progress


# Per conversation: the events of its latest stored snapshot and the progress carried onto them, per flags.
# Only ever copied from, never extended. Bounded like the tracker store's cache.
CARRIED_CONVERSATIONS = 500
_CARRIED: OrderedDict[str, Tuple[Tuple[Event, ...], Dict[Tuple[bool, bool], _Progress]]] = OrderedDict()


def _retargeted(progress: _Progress, events: Any) -> _Progress:
    """`progress` itself, now the progress of a tracker whose first `consumed` events are its own.

    The progress changes hands: its previous owner no longer holds it, so nothing is copied (copies of
    the replayed tracker and of the state list were ~2% of the server's CPU)."""
    consumed = progress.consumed
    progress.events = events
    progress.first_event = events[0] if consumed else None
    progress.last_event = events[consumed - 1] if consumed else None
    return progress


def carry_progress(saved: DialogueStateTracker, snapshot: DialogueStateTracker) -> None:
    """Move `saved`'s progress onto `snapshot`, whose events are, position by position, the same events
    (the stored rows parsed back: equal content, other objects).

    The progress is handed over, not copied: `saved` has been stored and Rasa is done with it (were its
    states asked for again, they would be computed from its first event, as Rasa does)."""
    _CARRIED.pop(saved.sender_id, None)
    entry = _PROGRESS.get(id(saved))
    if entry is None or id(entry[0]()) != id(saved) or len(saved.events) != len(snapshot.events):
        return
    counterpart = {id(mine): theirs for mine, theirs in zip(saved.events, snapshot.events, strict=True)}
    carried: Dict[Tuple[bool, bool], _Progress] = {}
    for flags, progress in list(entry[1].items()):
        if not _still_valid(progress, saved, progress.domain, progress.rule_only_data):
            continue
        if any(id(event) not in counterpart for event in progress.applied):
            continue
        moved_applied = [counterpart[id(event)] for event in progress.applied]
        del entry[1][flags]
        moved = _retargeted(progress, snapshot.events)
        moved.applied = moved_applied
        carried[flags] = moved
    if carried:
        _CARRIED[saved.sender_id] = (tuple(snapshot.events), carried)
        while len(_CARRIED) > CARRIED_CONVERSATIONS:
            _CARRIED.popitem(last=False)


def _inherited(
    tracker: DialogueStateTracker, domain: Domain, rule_only_data: Any, flags: Tuple[bool, bool]
) -> _Progress | None:
    """The progress carried for this conversation, when the tracker's events begin with its events.

    The first tracker to ask takes it over (a later copy of the same snapshot starts from the first event);
    each message's tracker asks once, and its save carries the progress onto the next snapshot."""
    entry = _CARRIED.get(tracker.sender_id)
    if entry is None:
        return None
    snapshot_events, carried = entry
    progress = carried.get(flags)
    if progress is None or progress.domain is not domain or progress.rule_only_data != rule_only_data:
        return None
    events = tracker.events
    if len(events) < progress.consumed:
        return None
    count = progress.consumed
    if not all(mine is theirs for mine, theirs in zip(itertools.islice(events, count), snapshot_events[:count],
                                                      strict=True)):
        return None
    del carried[flags]
    return _retargeted(progress, events)


def _still_valid(progress: _Progress, tracker: DialogueStateTracker, domain: Domain, rule_only_data: Any) -> bool:
    events = tracker.events
    return (
        progress.domain is domain
        and progress.rule_only_data == rule_only_data
        and progress.events is events
        and len(events) >= progress.consumed
        and (progress.consumed == 0 or (events[0] is progress.first_event
                                        and events[progress.consumed - 1] is progress.last_event))
    )


def _extends(progress: _Progress, tracker: DialogueStateTracker, new_events: List[Event]) -> bool:
    """True when Rasa's applied events for the longer history are the known ones plus `new_events`."""
    loop_names = progress.loop_names
    applied = list(progress.applied)
    for event in new_events:
        if isinstance(event, REWINDS):
            return False
        if isinstance(event, ActiveLoop) and event.name and event.name not in loop_names:
            return False
        if (
            isinstance(event, ActionExecuted)
            and event.action_name in loop_names
            and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
        ):
            return False
        applied.append(event)
    return True


def _copy_states(states: List[State]) -> List[State]:
    """New state and sub-state dicts, shared between states exactly where the originals are."""
    copies: Dict[int, Any] = {}

    def copied(sub_state: Any) -> Any:
        if not isinstance(sub_state, dict):
            return sub_state
        known = copies.get(id(sub_state))
        if known is None:
            known = copies[id(sub_state)] = dict(sub_state)
        return known

    return [{kind: copied(sub_state) for kind, sub_state in state.items()} for state in states]


class IncrementalStates:
    """`Domain.states_for_tracker_history` with per-tracker progress; `rasa_states` is Rasa's own."""

    def __init__(self, rasa_states: StatesFunction) -> None:
        self.rasa_states = rasa_states
        # For tests and profiling: calls answered by extending, and full computations.
        self.extended = 0
        self.full = 0
        self.inherited = 0  # of the extended: those that began from a carried progress

    def __call__(
        self,
        domain: Domain,
        tracker: DialogueStateTracker,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: Dict[str, Any] | None = None,
    ) -> List[State]:
        if not isinstance(tracker, DialogueStateTracker) or tracker._max_event_history is not None:
            return self.rasa_states(domain, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        flags = (omit_unset_slots, ignore_rule_only_turns)
        known = _progress_of(tracker)
        progress = known.get(flags)
        if progress is None:
            progress = _inherited(tracker, domain, rule_only_data, flags)
            if progress is not None:
                self.inherited += 1
                known[flags] = progress
        events = tracker.events
        if progress is not None and _still_valid(progress, tracker, domain, rule_only_data):
            new_events = [events[index] for index in range(progress.consumed, len(events))]
            if not _extends(progress, tracker, new_events):
                progress = None
        else:
            progress = None
        if progress is None:
            self.full += 1
            progress = self._start(domain, tracker, rule_only_data)
            known[flags] = progress
            new_events = list(progress.applied)
            progress.applied = []
        else:
            self.extended += 1
        self._advance(progress, tracker, new_events, omit_unset_slots, ignore_rule_only_turns)
        states = list(progress.states)
        final = self._turn(progress, progress.replay, False, omit_unset_slots, ignore_rule_only_turns, commit=False)
        if final is not None:
            states.append(final)
        return _copy_states(states)

    @staticmethod
    def _start(domain: Domain, tracker: DialogueStateTracker, rule_only_data: Any) -> _Progress:
        events = tracker.events
        return _Progress(
            domain=domain,
            rule_only_data=rule_only_data,
            events=events,
            consumed=0,
            first_event=None,
            last_event=None,
            loop_names={event.name for event in events if isinstance(event, ActiveLoop) and event.name},
            applied=tracker.applied_events(),
            replay=tracker.init_copy(),
        )

    def _advance(
        self,
        progress: _Progress,
        tracker: DialogueStateTracker,
        applied_events: List[Event],
        omit_unset_slots: bool,
        ignore_rule_only_turns: bool,
    ) -> None:
        """Rasa's loop body for each newly applied event (generate_all_prior_trackers yields before actions)."""
        for event in applied_events:
            if isinstance(event, ActionExecuted):
                self._turn(progress, progress.replay, event.hide_rule_turn, omit_unset_slots, ignore_rule_only_turns)
            progress.replay.update(event)
            progress.applied.append(event)
        events = tracker.events
        progress.consumed = len(events)
        progress.first_event = events[0] if events else None
        progress.last_event = events[-1] if events else None

    @staticmethod
    def _turn(
        progress: _Progress,
        replayed: DialogueStateTracker,
        hide_rule_turn: bool,
        omit_unset_slots: bool,
        ignore_rule_only_turns: bool,
        commit: bool = True,
    ) -> State | None:
        """One pass of the loop in `Domain.states_for_tracker_history`; `commit=False` leaves no trace."""
        domain = progress.domain
        last_ml_action, turn_was_hidden = progress.last_ml_action, progress.turn_was_hidden
        state: State | None = None
        if ignore_rule_only_turns:
            if not turn_was_hidden:
                last_ml_action = domain._get_prev_action_sub_state(replayed)
            in_loop = replayed.latest_action_name == replayed.active_loop_name
            if not replayed.followup_action and not in_loop:
                turn_was_hidden = hide_rule_turn
        if not (ignore_rule_only_turns and turn_was_hidden):
            state = domain.get_active_state(replayed, omit_unset_slots=omit_unset_slots)
            if ignore_rule_only_turns:
                domain._remove_rule_only_features(state, progress.rule_only_data)
                if progress.states:
                    domain._substitute_rule_only_user_input(state, progress.states[-1])
                if last_ml_action:
                    state[PREVIOUS_ACTION] = last_ml_action
            state = domain._clean_state(state)
        if commit:
            progress.last_ml_action, progress.turn_was_hidden = last_ml_action, turn_was_hidden
            if state is not None:
                progress.states.append(state)
        return state


# Per live tracker: (deque, length, first event, last event) when its applied events were computed, and them.
_APPLIED: Dict[int, Tuple[weakref.ref[DialogueStateTracker], Tuple[Any, int, Any, Any], List[Event]]] = {}


def _events_mark(tracker: DialogueStateTracker) -> Tuple[Any, int, Any, Any]:
    """Identifies a tracker's events: Rasa only ever appends to them (or replaces the whole deque)."""
    events = tracker.events
    return (events, len(events), events[0] if events else None, events[-1] if events else None)


def _same_mark(first: Tuple[Any, int, Any, Any], second: Tuple[Any, int, Any, Any]) -> bool:
    return all(a is b for a, b in zip(first, second, strict=True) if not isinstance(a, int)) and first[1] == second[1]


def remembered_applied_events() -> None:
    """Keep each tracker's applied events until its events change (idempotent)."""
    rasa_applied = DialogueStateTracker.applied_events
    if getattr(rasa_applied, "remembered", False):
        return

    def applied_events(self: DialogueStateTracker) -> List[Event]:
        if type(self) is not DialogueStateTracker:
            return rasa_applied(self)
        mark = _events_mark(self)
        entry = _APPLIED.get(id(self))
        if entry is not None and entry[0]() is self and _same_mark(entry[1], mark):
            return list(entry[2])
        applied = rasa_applied(self)
        key = id(self)
        _APPLIED[key] = (weakref.ref(self, lambda _ref: _APPLIED.pop(key, None)), mark, list(applied))
        return applied

    applied_events.remembered = True  # type: ignore[attr-defined]
    applied_events.__wrapped__ = rasa_applied  # type: ignore[attr-defined]
    DialogueStateTracker.applied_events = applied_events


def incremental_policy_states() -> IncrementalStates:
    """Install the incremental version as `Domain.states_for_tracker_history` (idempotent); returns it."""
    installed = getattr(Domain.states_for_tracker_history, "incremental", None)
    if isinstance(installed, IncrementalStates):
        return installed
    incremental = IncrementalStates(Domain.states_for_tracker_history)

    def states_for_tracker_history(
        self: Domain, tracker: DialogueStateTracker, *args: Any, **kwargs: Any
    ) -> List[State]:
        return incremental(self, tracker, *args, **kwargs)

    states_for_tracker_history.incremental = incremental  # type: ignore[attr-defined]
    Domain.states_for_tracker_history = states_for_tracker_history
    return incremental
