"""`config-release`: an example Cutover adapter written in Python.

It upgrades a node whose whole configuration lives in one directory, `{root}` (a per-target
label), in three target steps:

1. `stage`    writes `{root}/releases/{version}.conf` with the spec's `content`;
2. `activate` replaces `{root}/active.conf` with that release, atomically, through the host's
              `files.write-atomic`, and records what was active before so undo can put it back;
3. `verify`   reads `{root}/active.conf` back and fails unless it is exactly `content`.

Built with componentize-py against the `adapter-plugin` world of `wit/since_v1.0.0`; see
README.md. The `wit_world` package imported below does not exist on disk: componentize-py
generates it at build time (`componentize-py ... bindings DIR` writes a copy to read).

How the WIT types look from Python (componentize-py 0.25):

- records are dataclasses (`adapter.Step(...)`), enums are `enum.Enum`s (`types.Level.INFO`);
- a variant case is a dataclass named `<Variant>_<Case>` holding `.value`
  (`adapter.Capability_Dir(adapter.DirRequest(...))`, `types.HostError_Denied`);
- `option<T>` is `Optional[T]` (`None` for none), `list<u8>` is `bytes`;
- an imported function returning `result<T, E>` returns `T` or raises
  `componentize_py_types.Err` whose `.value` is the `E`; an exported one does the same: return
  the `T`, or `raise Err(E)`. Any other exception escaping an export traps the instance, which
  the host reports as a plugin fault, so every expected failure below becomes an `Err`.
"""

import json
import os
from typing import Dict, List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import adapter
from wit_world.exports.adapter import (
    Capability_Dir,
    DirRequest,
    Output,
    Parameter,
    Step,
    StepContext,
    StepError,
    StepKind,
)
from wit_world.imports import files, log, types

NAME = "config-release"
VERSION = "1.0.0"

# Names of the outputs `activate` hands to its undo.
PREVIOUS = "previous"
HAD_ACTIVE = "had-active"


# --- small helpers ------------------------------------------------------------------------


def pairs(items: List[types.Pair]) -> Dict[str, str]:
    """Parameters or labels as a dict."""
    return {p.key: p.value for p in items}


def output(key: str, value: str) -> Output:
    return Output(key=key, value=value, secret=False)


def fail(message: str, transient: bool = False, outputs: Optional[List[Output]] = None) -> Err:
    """The exception that makes a step return `err(step-error)`: `raise fail(...)`."""
    return Err(StepError(message=message, transient=transient, outputs=outputs or []))


def info(message: str) -> None:
    log.write(types.Level.INFO, message)


def host_error_text(e: types.HostError) -> str:
    """A host error as a sentence; a denial carries the whole sentence (what to grant)."""
    if isinstance(e, types.HostError_Denied):
        return e.value.message
    kind = {
        types.HostError_NotFound: "not found",
        types.HostError_TimedOut: "timed out",
        types.HostError_Invalid: "invalid request",
        types.HostError_Io: "I/O error",
    }[type(e)]
    return f"{kind}: {e.value}"


def write_atomic(path: str, data: str, outputs: Optional[List[Output]] = None) -> None:
    """`files.write-atomic`, its host error turned into a step error.

    Timeouts and I/O errors may pass on a retry; a denial, a missing directory or a malformed
    path will not. `outputs` are kept in the journal even though the step fails.
    """
    try:
        files.write_atomic(path, data.encode("utf-8"))
    except Err as e:
        err: types.HostError = e.value
        transient = isinstance(err, (types.HostError_TimedOut, types.HostError_Io))
        raise fail(f"cannot write {path}: {host_error_text(err)}", transient, outputs)


def read_text(path: str) -> Optional[str]:
    """The file's content (UTF-8, newlines untouched), or None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except FileNotFoundError:
        return None


class Node:
    """What one target step needs: the node's paths and the release being installed."""

    def __init__(self, step: str, target: Optional[types.Target], context: StepContext):
        if target is None:
            raise fail(f"step {step} runs per target, but the host gave no target")
        params = pairs(context.params)
        labels = pairs(target.labels)
        self.target = target.id
        self.root = labels.get("root") or ""
        self.version = params.get("version") or ""
        self.content = params.get("content")
        problem = root_problem(self.root) or version_problem(self.version)
        if problem or self.content is None:
            raise fail(problem or "the parameter `content` is missing")
        # Outside the preopened directories WASI sees nothing at all: say so, rather than
        # fail later with a bare "No such file or directory" (or, in an undo, find nothing
        # to remove and report success).
        if not os.path.isdir(self.root):
            raise fail(f"directory {self.root} does not exist or is not granted to step {step}")
        self.release = f"{self.root}/releases/{self.version}.conf"
        self.active = f"{self.root}/active.conf"
        # Where `activate` keeps what was active before, on disk, until undo (see activate).
        self.record = f"{self.root}/releases/{self.version}.previous.json"


def root_problem(root: str) -> Optional[str]:
    if not root:
        return "the target has no `root` label"
    if not root.startswith("/"):
        return f"root `{root}` is not an absolute path"
    return None


def version_problem(version: str) -> Optional[str]:
    # The version names a file under releases/: no separators, no `.`/`..`.
    if not version:
        return "the parameter `version` is missing"
    if "/" in version or "\\" in version or version in (".", ".."):
        return f"version `{version}` cannot name a file (it must not contain `/`)"
    return None


# --- the steps ----------------------------------------------------------------------------


def stage(n: Node, context: StepContext) -> List[Output]:
    # Plain WASI file I/O: the host preopens `{root}` (read-write for this step) at its own
    # path. Rewriting the same bytes on a re-run is harmless, so the step is idempotent.
    info(f"{n.target}: staging release {n.version} in {n.release}")
    os.makedirs(os.path.dirname(n.release), exist_ok=True)
    with open(n.release, "wb") as f:
        f.write(n.content.encode("utf-8"))
    return []


def undo_stage(n: Node, context: StepContext) -> None:
    info(f"{n.target}: removing staged release {n.release}")
    try:
        os.remove(n.release)
    except FileNotFoundError:
        pass  # already removed: an undo re-run after a crash
    # `stage` created releases/ when it was missing: leave the node as it was.
    try:
        os.rmdir(os.path.dirname(n.release))
    except OSError:
        pass  # not empty (other releases), or already gone


def activate(n: Node, context: StepContext) -> List[Output]:
    new = read_text(n.release)
    if new is None:
        raise fail(f"{n.release} is missing: was `stage` undone or the file removed?")

    # What was active before this rollout, which undo puts back. It must be the state from
    # before the *first* attempt: a re-run (after a crash or a retry) may find active.conf
    # already switched, and recording the new content as `previous` would make undo a no-op.
    # In order of trust:
    #  1. outputs of an earlier attempt (a failed attempt returns them with its step error);
    #  2. the record an earlier attempt of this rollout wrote next to the release before it
    #     switched (a crash between the switch and the journal leaves no outputs);
    #  3. active.conf as it is now, on the first attempt.
    earlier = {o.key: o.value for o in context.outputs}
    record = load_record(n, context.rollout_id)
    if PREVIOUS in earlier and HAD_ACTIVE in earlier:
        previous, had_active = earlier[PREVIOUS], earlier[HAD_ACTIVE] == "true"
    elif record is not None:
        previous, had_active = record
    else:
        current = read_text(n.active)
        previous, had_active = current or "", current is not None
    outputs = [output(PREVIOUS, previous), output(HAD_ACTIVE, "true" if had_active else "false")]

    if record is None:
        # Durable before the switch, so a crash right after it cannot lose the old content.
        blob = {"rollout": context.rollout_id, "had-active": had_active, "previous": previous}
        write_atomic(n.record, json.dumps(blob), outputs)

    info(
        f"{n.target}: activating release {n.version} "
        f"(attempt {context.attempt}, {'replacing' if had_active else 'creating'} {n.active})"
    )
    write_atomic(n.active, new, outputs)
    return outputs


def load_record(n: Node, rollout_id: str) -> Optional[tuple]:
    """(previous, had-active) from this rollout's record, or None (none, or another rollout's)."""
    text = read_text(n.record)
    if text is None:
        return None
    try:
        blob = json.loads(text)
        if blob.get("rollout") != rollout_id:
            return None  # an earlier rollout of the same version: this one starts afresh
        return str(blob["previous"]), bool(blob["had-active"])
    except (ValueError, KeyError, AttributeError):
        return None  # unreadable: fall back to the outputs / the current file


def undo_activate(n: Node, context: StepContext) -> None:
    done = {o.key: o.value for o in context.outputs}
    if PREVIOUS not in done or HAD_ACTIVE not in done:
        raise fail(f"cannot undo activate on {n.target}: its outputs `{PREVIOUS}`/`{HAD_ACTIVE}` are missing")
    if done[HAD_ACTIVE] == "true":
        info(f"{n.target}: restoring the previous {n.active}")
        write_atomic(n.active, done[PREVIOUS])
    else:
        info(f"{n.target}: removing {n.active} (there was none before)")
        try:
            os.remove(n.active)
        except FileNotFoundError:
            pass
    try:
        os.remove(n.record)  # no longer needed once the old state is back
    except FileNotFoundError:
        pass


def verify(n: Node, context: StepContext) -> List[Output]:
    info(f"{n.target}: verifying {n.active}")
    active = read_text(n.active)
    if active is None:
        raise fail(f"{n.active} does not exist")
    if active != n.content:
        raise fail(f"{n.active} does not hold release {n.version} (it differs from `content`)")
    return []


# (run, undo) of each step, by name.
STEPS = {
    "stage": (stage, undo_stage),
    "activate": (activate, undo_activate),
    "verify": (verify, None),
}


# --- the export ---------------------------------------------------------------------------


class Adapter(exports.Adapter):
    """The `adapter` interface: componentize-py looks for a class of this name in the app."""

    def describe(self) -> adapter.Description:
        root_rw = [Capability_Dir(DirRequest(path="{root}", access=types.Access.READ_WRITE))]

        def step(name, description, undoable, timeout, capabilities):
            return Step(
                name=name,
                description=description,
                kind=StepKind.TARGET_ROLLOUT,
                undoable=undoable,
                idempotent=True,
                undo_idempotent=undoable,
                default_timeout_s=timeout,
                capabilities=capabilities,
            )

        return adapter.Description(
            name=NAME,
            version=VERSION,
            summary="Stages a configuration release under {root}/releases and activates it as {root}/active.conf.",
            parameters=[
                Parameter("version", "Release name: the file {root}/releases/{version}.conf.", True, False, None),
                Parameter("content", "The configuration text of the release.", True, False, None),
                Parameter("root", "Directory holding the node's configuration.", True, True, None),
            ],
            capabilities=[Capability_Dir(DirRequest(path="{root}", access=types.Access.READ))],
            steps=[
                step("stage", "Write {root}/releases/{version}.conf.", True, 30, root_rw),
                step("activate", "Atomically replace {root}/active.conf with the release.", True, 30, root_rw),
                step("verify", "Check {root}/active.conf holds the release.", False, 10, []),
            ],
            leases=["{root}/.cutover-lease"],
        )

    def preflight(self, targets: List[types.Target], context: adapter.PreflightContext) -> List[adapter.Finding]:
        findings = []

        def blocker(target: Optional[str], message: str) -> None:
            findings.append(adapter.Finding(adapter.Severity.BLOCKER, target, message))

        params = pairs(context.params)
        problem = version_problem(params.get("version") or "")
        if problem:
            blocker(None, problem)
        if "content" not in params:
            blocker(None, "the parameter `content` is missing")
        for t in targets:
            root = pairs(t.labels).get("root") or ""
            problem = root_problem(root)
            if problem is None and not os.path.isdir(root):
                problem = f"directory {root} does not exist"
            if problem:
                blocker(t.id, problem)
        return findings

    def constraints(self, targets: List[types.Target], params: List[types.Pair]) -> List[types.Constraint]:
        return []  # any order and any wave size will do

    def run_step(self, step: str, target: Optional[types.Target], context: StepContext) -> List[Output]:
        run, _ = self._step(step)
        n = Node(step, target, context)
        try:
            return run(n, context)
        except OSError as e:
            # Plain file I/O failed (permissions, a full disk, a path outside the grants).
            raise fail(f"{step} on {n.target}: {e}")

    def undo_step(self, step: str, target: Optional[types.Target], context: StepContext) -> None:
        _, undo = self._step(step)
        if undo is None:
            raise fail(f"step {step} cannot be undone")
        n = Node(step, target, context)
        try:
            undo(n, context)
        except OSError as e:
            raise fail(f"undo of {step} on {n.target}: {e}")

    @staticmethod
    def _step(step: str):
        if step not in STEPS:
            raise fail(f"{NAME} has no step `{step}`")
        return STEPS[step]
