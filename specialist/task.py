"""What a specialist is for: the task id, its ordered labels and modality (copied into the card).

The site declares it in ``site.yaml``; the hub declares it for a federation. Both build the same
:class:`TaskConfig`, so a card says the same thing whoever trained the model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gsco_common.ids import TASK_ID_PATTERN


class StrictModel(BaseModel):
    """A configuration section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskConfig(StrictModel):
    """What the specialist is for: copied into the model card."""

    id: str = Field(pattern=TASK_ID_PATTERN)
    labels: list[str] = Field(min_length=2)
    modality: str = Field(min_length=1, max_length=200)
    intended_use: str = ""
    out_of_scope: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, labels: list[str]) -> list[str]:
        cleaned = [label.strip() for label in labels]
        if any(not label for label in cleaned):
            raise ValueError("label names must not be empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("label names must be distinct")
        return cleaned
