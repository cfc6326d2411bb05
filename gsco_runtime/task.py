"""A task as the runtime sees it: ordered labels, modality and answer synonyms.

Labels and modality come from the approved specialists' cards (the registry guarantees they
agree). Synonyms for parsing a generalist's free text come from the hub's task definitions file
(``<home>/hub/tasks.yaml``)::

    tasks:
      pneumonia:
        modality: paediatric chest X-ray   # optional override
        synonyms:
          pneumonia: [pneumonic, consolidation]
          normal: [no pneumonia, healthy]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from gsco_common.errors import ConfigError, RuntimeServiceError
from gsco_common.settings import validated

TASKS_FILE = Path("hub") / "tasks.yaml"


@dataclass(frozen=True)
class TaskSpec:
    """Labels (in the specialists' output order), modality and synonyms per label."""

    task_id: str
    label_names: tuple[str, ...]
    modality: str
    synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


class _TaskDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modality: str | None = None
    synonyms: dict[str, list[str]] = {}


class _TasksFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tasks: dict[str, _TaskDefinition] = {}


def load_task_definitions(home: Path) -> dict[str, _TaskDefinition]:
    path = home / TASKS_FILE
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("hub/tasks.yaml is not valid YAML", hint="fix the file") from exc
    return validated(_TasksFile, loaded, what="hub/tasks.yaml: ", hint="fix this key").tasks


def resolve_task(
    task_id: str, cards: Sequence[tuple[Sequence[str], str]], definitions: Mapping[str, _TaskDefinition]
) -> TaskSpec:
    """Combine the cards' (labels, modality) with the hub's definition of the task."""
    if not cards:
        raise RuntimeServiceError(f"no approved specialist is loaded for task {task_id!r}")
    labels = tuple(cards[0][0])
    if any(tuple(card_labels) != labels for card_labels, _ in cards):
        raise RuntimeServiceError(f"the specialists of task {task_id!r} disagree on the label order")
    definition = definitions.get(task_id, _TaskDefinition())
    unknown = set(definition.synonyms) - set(labels)
    if unknown:
        raise ConfigError(f"hub/tasks.yaml: tasks.{task_id}.synonyms names unknown labels {sorted(unknown)}")
    return TaskSpec(
        task_id=task_id,
        label_names=labels,
        modality=definition.modality or cards[0][1],
        synonyms={label: tuple(words) for label, words in definition.synonyms.items()},
    )
