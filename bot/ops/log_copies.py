"""Deep copies made only for a debug log line are skipped while debug logging is off (rasa_main, 18.).

Rasa logs several values per message as `structlogger.debug("...", key=copy.deepcopy(value))`: the copy is
made before the call, so also when the debug line is then dropped (about 2% of the server's time under
load: the policies' states, the parse data, every action's events). In the modules listed here every use
of the `copy` module is such a log argument (checked in their source before anything is replaced, see
`deepcopies_only_for_debug_logs`, and again by tests/ops/test_action_speedups.py), so each of these modules
gets a stand-in for `copy` whose deepcopy returns the value itself when the module's structlog logger
drops debug lines and makes the real copy otherwise. The logger is asked at every call, so turning debug
logging on (`rasa run --debug`, LOG_LEVEL=DEBUG) gets Rasa's copies again.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import logging
import textwrap
from types import ModuleType
from typing import Any, Dict, List

import structlog

DEBUG_COPY_MODULES = (
    "rasa.core.policies.memoization",
    "rasa.core.processor",
    "rasa.core.actions.forms",
    "rasa.core.policies.rule_policy",
)
LOGGER_NAME = "structlogger"

# The debug method of a structlog filtering logger that drops debug lines (they all share this no-op).
_DROPPED_DEBUG = structlog.make_filtering_bound_logger(logging.CRITICAL).debug


def debug_is_dropped(module: ModuleType) -> bool:
    """True only when the module's structlog logger certainly throws a debug line away unprocessed."""
    proxy = getattr(module, LOGGER_NAME, None)
    bind = getattr(proxy, "bind", None)
    if bind is None:
        return False
    try:
        bound = bind()  # what the proxy's `.debug` is looked up on (cached after the first log call)
    except Exception:
        return False
    return getattr(type(bound), "debug", None) is _DROPPED_DEBUG


class DebugOnlyCopy:
    """Stands in for the `copy` module inside one Rasa module; anything but deepcopy is the real module's."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Dict[int, Any] | None = None) -> Any:
        if debug_is_dropped(self._module):
            return value
        return copy.deepcopy(value, memo)


def _parents(tree: ast.AST) -> Dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_debug_log_call(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "debug"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == LOGGER_NAME
    )


def copy_uses_outside_debug_logs(source: str) -> List[str]:
    """Every use of the name `copy` in a module's source that is not `import copy` at the top or the
    whole of a direct argument `copy.deepcopy(...)` of a `structlogger.debug(...)` call (empty: safe)."""
    tree = ast.parse(source)
    parents = _parents(tree)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                top_import = isinstance(node, ast.Import) and alias.name == "copy" and not alias.asname
                if bound == "copy" and not (top_import and parents.get(node) is tree):
                    problems.append(f"line {node.lineno}: binds `copy` ({ast.unparse(node)})")
        elif isinstance(node, ast.Name) and node.id == "copy":
            attribute = parents.get(node)
            call = parents.get(attribute) if attribute is not None else None
            log_call = parents.get(call) if call is not None else None
            if isinstance(log_call, ast.keyword):
                log_call = parents.get(log_call)
            ok = (
                isinstance(node.ctx, ast.Load)
                and isinstance(attribute, ast.Attribute)
                and attribute.attr == "deepcopy"
                and isinstance(call, ast.Call)
                and call.func is attribute
                and _is_debug_log_call(log_call)
            )
            if not ok:
                problems.append(f"line {node.lineno}: `copy` used outside a debug log argument")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            names = [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
            names += [a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None]
            if "copy" in names:
                problems.append(f"line {node.lineno}: a parameter named `copy`")
        elif isinstance(node, ast.ExceptHandler) and node.name == "copy":
            problems.append(f"line {node.lineno}: `except ... as copy`")
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and "copy" in node.names:
            problems.append(f"line {node.lineno}: global/nonlocal `copy`")
    return problems


def deepcopies_only_for_debug_logs(module: ModuleType) -> bool:
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return False
    return getattr(module, "copy", None) is copy and not copy_uses_outside_debug_logs(source)


def skip_debug_log_copies() -> List[str]:
    """Installs DebugOnlyCopy in each listed module that passes the source check; returns those modules."""
    patched = []
    for name in DEBUG_COPY_MODULES:
        module = importlib.import_module(name)
        if isinstance(getattr(module, "copy", None), DebugOnlyCopy):
            patched.append(name)
        elif deepcopies_only_for_debug_logs(module):
            module.copy = DebugOnlyCopy(module)  # type: ignore[attr-defined]
            patched.append(name)
        else:
            logging.getLogger(__name__).warning("%s keeps Rasa's deep copies: copy is used elsewhere", name)
    return patched


def only_logged(function_source: str, producer: str) -> bool:
    """True when, in one function's source, the result of `self.<producer>(...)` is assigned to one name
    that is read only inside `copy.deepcopy(name)` passed to a `structlogger.debug(...)` call."""
    tree = ast.parse(function_source)
    parents = _parents(tree)
    targets = [
        node.targets[0].id for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == producer
    ]
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == producer]
    if len(targets) != 1 or len(calls) != 1:
        return False
    name = targets[0]
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == name) or isinstance(node.ctx, ast.Store):
            continue
        call = parents.get(node)
        keyword = parents.get(call) if call is not None else None
        log_call = parents.get(keyword) if isinstance(keyword, ast.keyword) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "deepcopy"
                and _is_debug_log_call(log_call)):
            return False
    assigned = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == name
                and isinstance(node.ctx, ast.Store)]
    return len(assigned) == 1


def skip_debug_only_state_formatting() -> bool:
    """RulePolicy formats the conversation's states as text for one debug line per rule look-up (~1% of the
    server's CPU); while that line is dropped, the text is not made. Installed only when the source shows
    the text goes nowhere else (`only_logged`); True when installed."""
    from rasa.core.policies import rule_policy
    from rasa.core.policies.policy import Policy

    current = rule_policy.RulePolicy.__dict__.get("format_tracker_states")
    if isinstance(current, staticmethod) and getattr(current.__func__, "debug_only", False):
        return True
    try:
        source = inspect.getsource(rule_policy.RulePolicy._find_action_from_rules)
    except (OSError, TypeError):
        return False
    if not only_logged(textwrap.dedent(source), "format_tracker_states"):
        logging.getLogger(__name__).warning("RulePolicy keeps formatting its states: the text is used elsewhere")
        return False
    rasa_format = Policy.format_tracker_states

    def format_tracker_states(states: List[Dict]) -> str:
        return "" if debug_is_dropped(rule_policy) else rasa_format(states)

    format_tracker_states.debug_only = True  # type: ignore[attr-defined]
    rule_policy.RulePolicy.format_tracker_states = staticmethod(format_tracker_states)
    return True

