"""What a curation policy is: the actions, the built-in policies (built from the registered detectors' declarations), the ``[tail]`` settings, and TOML policy files with one-line errors."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from uimdata.detectors import REGISTRY, Detector
from uimdata.errors import UimError

ACTIONS = ("drop", "relabel", "reweight", "keep")
FORMATS = ("parquet", "jsonl", "hf")
#: the built-in policies (measured in `make bench`, see docs/benchmarks.md): each issue's table is its
#: detector's ``curate_rule``, changed where its ``curate_policies`` names the policy
POLICY_NAMES = ("conservative", "default", "aggressive")
#: policy tables that are not issues, with their table in every built-in policy: ``tail`` says how the
#: decisions of ``tail_guard`` issues (label, outlier) treat the members of rare classes (see ``decide.tail_guard``)
SETTINGS: dict[str, dict[str, Any]] = {
    "tail": {"action": "guard", "rare_ratio": 0.5, "max_drop": 0.2, "knn_min": 0.5, "prior_power": 1.0,
             "reweight_rare": True},
}
#: the settings' actions
SETTING_ACTIONS = {"tail": ("guard", "off")}
#: every key a policy table may hold, and its type
_OPTIONS = {"action": str, "keep": str, "min_prob": float, "otherwise": str, "max_weight": float,
            "rare_ratio": float, "max_drop": float, "knn_min": float, "prior_power": float, "per_label": bool,
            "reweight_rare": bool}


def detector_class(issue: str) -> type[Detector]:
    return REGISTRY[issue]


def _check_declared(cls: type[Detector]) -> None:
    """A detector's curation declarations hold together (a programming error otherwise, not a user's)."""
    rules = [cls.curate_rule, *cls.curate_policies.values()]
    bad = [f"action {a!r}" for a in cls.curate_actions if a not in ACTIONS]
    bad += [f"a table with action {r.get('action')!r}" for r in rules if r.get("action") not in cls.curate_actions]
    bad += [f"option {k!r}" for r in rules for k in r if k not in _OPTIONS]
    bad += [f"policy {n!r}" for n in cls.curate_policies if n not in POLICY_NAMES]
    if "relabel" in cls.curate_actions and not cls.suggestion_columns:
        bad.append("relabel without suggestion_columns")
    if cls.issue in SETTINGS:
        bad.append(f"the name of the policy table [{cls.issue}]")
    if bad:
        raise ValueError(f"detector '{cls.issue}' declares curation it cannot have: {bad}")


def base_policy() -> dict[str, dict[str, Any]]:
    """Every registered issue's table as its detector declares it (``curate_rule``), then the settings."""
    for cls in REGISTRY.values():
        _check_declared(cls)
    return {**{issue: copy.deepcopy(cls.curate_rule) for issue, cls in REGISTRY.items()}, **copy.deepcopy(SETTINGS)}


def builtin_policies() -> dict[str, dict[str, dict[str, Any]]]:
    """The built-in policies, built from the registered detectors (a detector registered later is in them):
    the base policy with each detector's ``curate_policies`` applied (the same action: its options merged
    in; another action: the table replaced)."""
    base = base_policy()
    out = {}
    for name in POLICY_NAMES:
        policy = copy.deepcopy(base)
        for issue, cls in REGISTRY.items():
            over = cls.curate_policies.get(name)
            if over:
                same = over.get("action") == policy[issue]["action"]
                policy[issue] = {**policy[issue], **over} if same else copy.deepcopy(over)
        out[name] = policy
    return out


def load_policy(spec: str | None) -> tuple[str, dict[str, dict[str, Any]]]:
    """A built-in name or a TOML file -> (name, policy)."""
    spec = spec or "default"
    policies = builtin_policies()
    if spec in policies:
        return spec, policies[spec]
    path = Path(spec)
    if not path.exists():
        raise UimError(f"unknown policy {spec!r}", expected=f"one of {', '.join(policies)} or a TOML file",
                       got="no such name or file")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UimError(f"{path}: not valid TOML", got=str(e)) from None
    base = raw.pop("base", "default")
    if base not in policies:
        raise UimError(f"{path}: unknown base policy {base!r}", expected=", ".join(policies), got=repr(base))
    policy = policies[base]
    defaults = base_policy()
    for issue, table in raw.items():
        policy[issue] = _table(path, issue, table, policy, defaults)
    return str(path), policy


def _table(path: Path, issue: str, table: Any, policy: dict[str, dict[str, Any]],
           defaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One ``[issue]`` table of the TOML policy ``path``, checked and merged into the ``policy`` it overrides:
    the same action keeps that policy's options, another starts from the base policy's (``defaults``)."""
    where = f"{path}: [{issue}]"
    if not isinstance(table, dict) and issue not in defaults:
        raise UimError(f"{path}: unknown top-level key {issue!r}",
                       expected="base = \"NAME\" and one [ISSUE] table per issue", got=f"{issue} = {table!r}",
                       hint=f'put options under their issue\'s table, e.g. [label] then {issue} = ...')
    if issue not in defaults:
        raise UimError(f"{where}: unknown issue", expected=", ".join(defaults), got=repr(issue))
    if not isinstance(table, dict):
        raise UimError(f"{where}: not a table", expected='e.g. action = "drop"', got=repr(table))
    for key, val in table.items():
        if key not in _OPTIONS:
            raise UimError(f"{where}: unknown key {key!r}", expected=", ".join(_OPTIONS), got=repr(key))
        if _OPTIONS[key] is float and (not isinstance(val, int | float) or isinstance(val, bool)) \
                or _OPTIONS[key] is str and not isinstance(val, str) \
                or _OPTIONS[key] is bool and not isinstance(val, bool):
            raise UimError(f"{where}: {key} has the wrong type", expected=_OPTIONS[key].__name__,
                           got=repr(val))
    action = table.get("action", policy[issue]["action"])
    allowed = _allowed(issue)
    if action not in allowed:
        raise UimError(f"{where}: action {action!r} does not apply", expected=" | ".join(allowed),
                       got=repr(action))
    merged = {**policy[issue], **table} if action == policy[issue]["action"] else {**defaults[issue], **table}
    merged["action"] = action
    _check_values(where, merged)
    return merged


def _check_values(where: str, rule: dict[str, Any]) -> None:
    """The option values of one merged table are in range."""
    if rule.get("keep", "first") not in ("first", "longest"):
        raise UimError(f"{where}: keep must be first or longest", expected="first | longest",
                       got=repr(rule["keep"]))
    if rule.get("otherwise", "drop") not in ("drop", "keep"):
        raise UimError(f"{where}: otherwise must be drop or keep", expected="drop | keep",
                       got=repr(rule["otherwise"]))
    if not 0 <= float(rule.get("min_prob", 0.5)) <= 1:
        raise UimError(f"{where}: min_prob out of range", expected="0 <= min_prob <= 1",
                       got=repr(rule["min_prob"]))
    for key in ("max_drop", "knn_min"):
        if not 0 <= float(rule.get(key, 0.5)) <= 1:
            raise UimError(f"{where}: {key} out of range", expected=f"0 <= {key} <= 1", got=repr(rule[key]))
    if float(rule.get("max_weight", 5.0)) < 1:
        raise UimError(f"{where}: max_weight below 1", expected=">= 1", got=repr(rule["max_weight"]))


def _allowed(issue: str) -> tuple[str, ...]:
    """The actions a policy may give ``issue``: its detector's ``curate_actions`` (or a setting's)."""
    return SETTING_ACTIONS[issue] if issue in SETTING_ACTIONS else detector_class(issue).curate_actions
