"""Which images each site, case library and evaluation set gets; overlaps refused up front."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsco_common.errors import ConfigError
from hub.study.shards import Shard, overlaps, read_split, select
from hub.study.spec import EvaluationSpec, LibrarySpec, ShardSpec, StudySpec


@dataclass(frozen=True)
class Arm:
    """One case library and one evaluation set for the trained sites (the main one or a variant)."""

    name: str
    library_spec: LibrarySpec
    evaluation_spec: EvaluationSpec
    library: Shard
    evaluation: Shard

    @property
    def library_split(self) -> str:
        """The split the library file holds: a site's own shard file is written as ``train``."""
        return "train" if self.library_spec.site else self.library.spec.split


@dataclass(frozen=True)
class StudyShards:
    sites: dict[str, Shard]
    arms: list[Arm]

    @property
    def main(self) -> Arm:
        return self.arms[0]


def plan_shards(spec: StudySpec) -> StudyShards:
    """Every shard of the study; refuses a library or evaluation set that overlaps training data.

    A library given as ``site: NAME`` is that site's own training shard on purpose (the hub
    must then refuse to calibrate on it); any other overlap is a mistake and stops the study.
    Each variant keeps the main arm's library or evaluation set unless it names its own. A
    variant's shards are keyed by its name, not its place in the file: a draw (``label_skew``,
    ``max_images``) is seeded by the key, so two studies with a variant of the same name and
    shard draw the same images, and :mod:`hub.study.comparison` pairs those variants.
    """
    labels_of: dict[tuple[str, str], np.ndarray] = {}

    def pick(key: str, shard: ShardSpec) -> Shard:
        source = (shard.dataset, shard.split)
        if source not in labels_of:
            labels_of[source] = read_split(spec.datasets[shard.dataset], shard.split, len(spec.task.labels))[
                1
            ]
        return select(key, shard, labels_of[source], spec.task.labels, spec.seed)

    sites = {site.name: pick(f"sites.{i}.shard", site.shard) for i, site in enumerate(spec.sites)}

    def arm(name: str, prefix: str, library_spec: LibrarySpec, evaluation_spec: EvaluationSpec) -> Arm:
        if library_spec.site is not None:
            library = sites[library_spec.site]
        else:
            assert library_spec.shard is not None  # one of the two, by the spec's validation
            library = pick(f"{prefix}library.shard", library_spec.shard)
            _refuse_overlaps(
                overlaps([library], list(sites.values())), "the hub must not calibrate on training data"
            )
        evaluation = pick(f"{prefix}evaluation.shard", evaluation_spec.shard)
        _refuse_overlaps(
            overlaps([evaluation], [*sites.values(), library]), "the evaluation set must be held out"
        )
        return Arm(name, library_spec, evaluation_spec, library, evaluation)

    arms = [arm("main", "", spec.library, spec.evaluation)]
    arms += [
        arm(v.name, f"variants.{v.name}.", v.library or spec.library, v.evaluation or spec.evaluation)
        for v in spec.variants
    ]
    return StudyShards(sites, arms)


def _refuse_overlaps(found: list[tuple[str, str, int]], why: str) -> None:
    if found:
        key, other, shared = found[0]
        raise ConfigError(
            f"{key} shares {shared} images with {other} (same split of the same data set): {why}",
            hint="give it a disjoint `range`; `library: {site: NAME}` shows the hub's refusal on purpose",
        )
