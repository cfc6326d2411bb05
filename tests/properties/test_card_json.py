"""card.json from a bundle: whatever the file holds, reading it ends in the card or a CardError."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsco_common.errors import CardError
from registry.bundle.card import Card
from registry.bundle.layout import CARD_FILE
from tests.properties.hostile import PROPERTY, WRONG_JSON, mutated_bytes, only_own_errors
from tests.registry.bundles import card_for

VALID = card_for(["normal", "pneumonia"], "sha256:" + "ab" * 32)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of ``node`` (dict keys and list indices), parents before children."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found = [prefix] if prefix else []
    for key, value in children:
        found.extend(_paths(value, (*prefix, key)))
    return found


PATHS = _paths(VALID)


@st.composite
def hostile_cards(draw: st.DrawFn) -> Any:
    """The valid card with one field replaced by a wrong-typed value, deleted, or a key added."""
    card = copy.deepcopy(VALID)
    *parents, last = draw(st.sampled_from(PATHS))
    holder = card
    for key in parents:
        holder = holder[key]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "delete":
        del holder[last]
    elif action == "add" and isinstance(holder, dict):
        holder[draw(st.text(max_size=6))] = draw(WRONG_JSON)
    else:
        holder[last] = draw(WRONG_JSON)
    return card


def _use(card: Card) -> None:
    """What the registry and the hub read from a card once it is accepted."""
    assert card.preprocessing.input_size > 0 and len(card.headline_metrics()) == 5
    assert all([card.task_id, card.labels, card.modality, card.backbone, card.model_uid])
    assert card.embedding_dim > 0


def _read(folder: Path, data: bytes) -> None:
    (folder / CARD_FILE).write_bytes(data)
    _use(Card.read(folder))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("card")


@PROPERTY
@given(card=hostile_cards())
def test_a_card_with_a_wrong_field_is_a_card_error_or_usable(card: Any) -> None:
    only_own_errors(lambda: _use(Card.from_dict(card)))


@PROPERTY
@given(data=mutated_bytes(json.dumps(VALID, indent=2).encode()))
def test_a_damaged_card_file_is_a_card_error_or_usable(folder: Path, data: bytes) -> None:
    only_own_errors(lambda: _read(folder, data))


@PROPERTY
@given(value=WRONG_JSON)
def test_a_card_file_of_any_json_value_is_a_card_error(folder: Path, value: Any) -> None:
    with pytest.raises(CardError):
        _read(folder, json.dumps(value).encode())
