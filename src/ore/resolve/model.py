"""The generic person-linkage model builder: one Fellegi-Sunter model shape for every job.

ore's lead deduplication, its holdings linkage and the Febrl checks all build their
Splink model here, from a section of ``settings.yaml``, over tables in the standard
person columns (``ore.resolve.standard``). What a model decides is whether two rows name
the same person, on the evidence of:

- names: exact (with term-frequency adjustment, so "SMITH" counts for less than
  "OKAFOR"), a nickname of the same formal name, a close spelling (Jaro-Winkler), an
  initial; surnames likewise;
- date of birth: exact, one or two typed digits apart;
- postcode: exact, one character apart, same sector, district, area;
- address: same normalised street line, or same house number and a close street, and no
  other flat;
- identifiers a job adds (card token, email or account name): exact.

Postcode and address are one "residence" comparison, since a household shares both and
counting them twice would make a relative at the same address look like the person.
Term-frequency adjustment makes a common name count for little; beyond that, a section's
``veto`` conditions (on the comparison levels) score 0 the pairs that are two people
whatever else agrees, such as a name alone with nothing else in common. Training uses no
labels: the prior from near-certain rules (``prior_rules``), u by seeded random sampling
(a level the sample never met gets u of one in the sample, so rare agreement still
counts), m by expectation maximisation over blocks that each leave some comparisons free
to be estimated. Inputs are ordered by ``unique_id`` and the seed is fixed, so a given
input always gives the same model and the same links.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import yaml
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink import comparison_level_library as cll
from splink import comparison_library as cl
from splink.blocking_rule_library import And, CustomRule
from splink.clustering import cluster_pairwise_predictions_at_threshold

from ore.resolve.engine import DuckDBEngine, Engine

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def load_settings() -> dict[str, Any]:
    """The package's ``settings.yaml``: comparison choices, blocking and thresholds."""
    text = resources.files("ore.resolve").joinpath("settings.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


# --- comparisons -------------------------------------------------------------------------


def _first_name(opt: dict[str, Any]) -> cl.CustomComparison:
    tf = bool(opt.get("tf", True))
    return cl.CustomComparison(
        output_column_name="first_name",
        comparison_description="first name: exact, nickname, close spelling, initial",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name", term_frequency_adjustments=tf),
            cll.ArrayIntersectLevel("first_formal", 1).configure(label_for_charts="same formal name (nickname)"),
            cll.JaroWinklerLevel("first_name", 0.92),
            cll.CustomLevel(
                "(length(first_name_l) = 1 OR length(first_name_r) = 1) "
                "AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                label_for_charts="initial agrees",
            ),
            cll.JaroWinklerLevel("first_name", 0.8),
            cll.ElseLevel(),
        ],
    )


def _last_name(opt: dict[str, Any]) -> cl.CustomComparison:
    tf = bool(opt.get("tf", True))
    levels = [
        cll.NullLevel("last_name"),
        cll.ExactMatchLevel("last_name", term_frequency_adjustments=tf),
    ]
    if opt.get("reversed"):
        levels.append(cll.ColumnsReversedLevel("first_name", "last_name"))
    levels += [
        cll.JaroWinklerLevel("last_name", 0.92),
        cll.CustomLevel(
            "(length(last_name_l) = 1 OR length(last_name_r) = 1) "
            "AND substr(last_name_l, 1, 1) = substr(last_name_r, 1, 1)",
            label_for_charts="initial agrees",
        ),
        cll.JaroWinklerLevel("last_name", 0.8),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(
        output_column_name="last_name",
        comparison_description="surname: exact, close spelling",
        comparison_levels=levels,
    )


def _dob(opt: dict[str, Any]) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="dob",
        comparison_description="date of birth (YYYYMMDD): exact, one or two digits apart",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.DamerauLevenshteinLevel("dob", 1),
            cll.CustomLevel(
                "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) AND substr(dob_l, 5, 2) = substr(dob_r, 7, 2) "
                "AND substr(dob_l, 7, 2) = substr(dob_r, 5, 2)",
                label_for_charts="day and month swapped",
            ),
            cll.DamerauLevenshteinLevel("dob", 2),
            cll.ElseLevel(),
        ],
    )


def _postcode(opt: dict[str, Any]) -> cl.CustomComparison:
    tf = bool(opt.get("tf", False))
    return cl.CustomComparison(
        output_column_name="postcode",
        comparison_description="postcode: full, one character apart, sector, district, area",
        comparison_levels=[
            cll.NullLevel("postcode"),
            cll.ExactMatchLevel("postcode", term_frequency_adjustments=tf),
            cll.DamerauLevenshteinLevel("postcode", 1),
            cll.ExactMatchLevel("pc_sector").configure(label_for_charts="same sector"),
            cll.ExactMatchLevel("pc_outward").configure(label_for_charts="same district"),
            cll.ExactMatchLevel("pc_area").configure(label_for_charts="same area"),
            cll.ElseLevel(),
        ],
    )


def _same_flat() -> cll.CustomLevel:
    """Flats of one block share a street line; a flat left out on either side is not another flat."""
    return cll.CustomLevel('("flat_l" IS NULL OR "flat_r" IS NULL OR "flat_l" = "flat_r")')


def _address(opt: dict[str, Any]) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="address",
        comparison_description="address line: exact, same number and close street, same flat",
        comparison_levels=[
            cll.NullLevel("street"),
            cll.And(cll.ExactMatchLevel("street"), _same_flat()).configure(label_for_charts="same address"),
            cll.And(cll.ExactMatchLevel("house_no"), cll.JaroWinklerLevel("street", 0.88), _same_flat()).configure(
                label_for_charts="same number, close street"),
            cll.JaroWinklerLevel("street", 0.88),
            cll.ElseLevel(),
        ],
    )


def _residence(opt: dict[str, Any]) -> cl.CustomComparison:
    """Postcode and address line as one piece of evidence: they are not independent (a
    household shares both), so agreement on the address is counted once, not twice."""
    same_street = cll.And(
        cll.Or(
            cll.ExactMatchLevel("street"),
            cll.And(cll.ExactMatchLevel("house_no"), cll.JaroWinklerLevel("street", float(opt.get("street", 0.88)))),
        ),
        _same_flat(),
    )
    return cl.CustomComparison(
        output_column_name="residence",
        comparison_description="postcode and address: same address, same postcode, sector, district, area",
        comparison_levels=[
            cll.NullLevel("postcode"),
            cll.And(cll.ExactMatchLevel("postcode"), same_street).configure(label_for_charts="same address"),
            cll.And(cll.DamerauLevenshteinLevel("postcode", 1), same_street).configure(
                label_for_charts="same address, postcode one character apart"),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="same postcode"),
            cll.DamerauLevenshteinLevel("postcode", 1).configure(label_for_charts="postcode one character apart"),
            cll.ExactMatchLevel("pc_sector").configure(label_for_charts="same sector"),
            cll.ExactMatchLevel("pc_outward").configure(label_for_charts="same district"),
            cll.ExactMatchLevel("pc_area").configure(label_for_charts="same area"),
            cll.ElseLevel(),
        ],
    )


def _text(opt: dict[str, Any]) -> cl.CustomComparison:
    col = opt["column"]
    return cl.CustomComparison(
        output_column_name=opt.get("label", col),
        comparison_description=f"{col}: exact, close spelling",
        comparison_levels=[
            cll.NullLevel(col),
            cll.ExactMatchLevel(col, term_frequency_adjustments=bool(opt.get("tf", False))),
            cll.JaroWinklerLevel(col, float(opt.get("similarity", 0.88))),
            cll.ElseLevel(),
        ],
    )


def _exact(opt: dict[str, Any]) -> cl.CustomComparison:
    col = opt["column"]
    return cl.CustomComparison(
        output_column_name=opt.get("label", col),
        comparison_description=f"{col}: exact",
        comparison_levels=[
            cll.NullLevel(col),
            cll.ExactMatchLevel(col, term_frequency_adjustments=bool(opt.get("tf", False))),
            cll.ElseLevel(),
        ],
    )


def _account(opt: dict[str, Any]) -> cl.CustomComparison:
    """Email, and optionally the account name, as one piece of evidence (a login is one
    choice of its owner, however many fields it fills). Account names are off by default:
    sites truncate them ("robertwallac"), so namesakes share them."""
    email, user = opt.get("email", "email"), opt.get("username")
    levels: list[Any] = [cll.NullLevel(email) if not user else cll.And(cll.NullLevel(email), cll.NullLevel(user)),
                         cll.ExactMatchLevel(email)]
    if user:
        levels.append(cll.ExactMatchLevel(user))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(
        output_column_name="account",
        comparison_description="email (or account name): exact",
        comparison_levels=levels,
    )


COMPARISONS = {
    "first_name": _first_name,
    "last_name": _last_name,
    "dob": _dob,
    "postcode": _postcode,
    "address": _address,
    "exact": _exact,
    "text": _text,
    "residence": _residence,
    "account": _account,
}


# --- the model ---------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """One model's choices, as a section of ``settings.yaml`` holds them."""

    name: str
    link_type: str
    comparisons: list[dict[str, Any]]
    blocking: list[Any]  # each a list of columns that must be equal, or {equal: [...], where: SQL over l. and r.}
    training: list[list[str]]
    threshold: float = 0.95
    probability_two_random_records_match: float = 1e-4
    u_max_pairs: float = 2e6
    em_max_pairs: float | None = None
    seed: int = 42
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # YAML 1.1 reads "2.0e6" as a string: numbers are made numbers here
        self.threshold = float(self.threshold)
        self.probability_two_random_records_match = float(self.probability_two_random_records_match)
        self.u_max_pairs = float(self.u_max_pairs)
        self.em_max_pairs = None if self.em_max_pairs is None else float(self.em_max_pairs)

    @classmethod
    def from_settings(cls, name: str, section: dict[str, Any] | None = None, seed: int | None = None) -> ModelSpec:
        settings = load_settings()
        sec = dict(section if section is not None else settings[name])
        known = {k: sec.pop(k) for k in list(sec) if k in cls.__dataclass_fields__ and k != "extra"}
        return cls(name=name, seed=int(seed if seed is not None else settings.get("seed", 42)), **known, extra=sec)

    def settings_creator(self) -> SettingsCreator:
        return SettingsCreator(
            link_type=self.link_type,
            comparisons=[COMPARISONS[c["kind"]](c) for c in self.comparisons],
            blocking_rules_to_generate_predictions=[_blocking_rule(r) for r in self.blocking],
            probability_two_random_records_match=self.probability_two_random_records_match,
            retain_matching_columns=True,  # Splink keeps gamma_* only with the matching columns
            retain_intermediate_calculation_columns=True,  # gamma_* for vetoes and conflict splits
            max_iterations=int(self.extra.get("max_iterations", 25)),
            em_convergence=1e-4,
        )


def _blocking_rule(rule: Any) -> Any:
    """A rule of the settings: columns that must be equal, or a mapping with ``equal`` (those
    columns) and ``where`` (a further condition on ``l.`` and ``r.``, applied to the pairs
    the equal columns give, before any comparison is computed)."""
    if isinstance(rule, dict):
        return And(block_on(*rule["equal"]), CustomRule(rule["where"]))
    return block_on(*rule)


@dataclass(frozen=True)
class Table:
    """A result table in resolve's DuckDB connection, whichever engine computed it."""

    physical_name: str


@dataclass
class TrainedModel:
    spec: ModelSpec
    linker: Linker
    db_api: Any  # the engine's Splink database API
    con: duckdb.DuckDBPyConnection  # resolve's DuckDB connection, where results land
    engine: Engine = field(default_factory=DuckDBEngine)
    inputs: tuple[str, ...] = ()  # the DuckDB tables it was trained on (the nodes when clustering)

    def save(self, out_dir: Path | None, filename: str | None = None) -> Path | None:
        """Write the trained model as Splink's JSON into ``out_dir`` (if one is given)."""
        if out_dir is None:
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / (filename or f"splink_model_{self.spec.name}.json")
        self.linker.misc.save_model_to_json(str(path), overwrite=True)
        return path

    def predict(self, threshold: float | None = None) -> Table:
        """Score the blocked pairs at or above ``threshold``: a DuckDB table of ``unique_id_l``,
        ``unique_id_r`` (and their ``source_dataset_*``), ``match_probability``,
        ``match_weight`` and the comparison levels ``gamma_*``.

        Pairs a ``veto`` of the spec forbids are scored 0. A veto is a condition on the
        comparison levels (``gamma_<comparison>``: -1 missing, 0 disagrees outright, higher
        agrees more) that shows two different people whatever else agrees, e.g. a different
        first name and no date of birth in agreement: a relative at the same address.
        """
        df = self.linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        # only the columns callers read (ids, scores, comparison levels): copying every
        # compared value and Bayes factor of a million pairs costs more than the veto itself
        cols = [c.unquote().name for c in df.columns]
        keep = [c for c in cols if c in ("source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r")
                or c.startswith("gamma_") or c == "match_key"]
        vetoes = self.spec.extra.get("veto") or []
        cond = " OR ".join(f"({v})" for v in vetoes) or "FALSE"
        name = f"__ore_{self.spec.name}_pairs"
        sql = f"""SELECT {", ".join(keep)},
                         CASE WHEN {cond} THEN -99.0 ELSE match_weight END AS match_weight,
                         CASE WHEN {cond} THEN 0.0 ELSE match_probability END AS match_probability
                  FROM {df.physical_name}"""
        self.engine.materialise(self.db_api, self.con, sql, name)
        df.drop_table_from_database_and_remove_from_cache()
        return Table(name)

    def cluster(self, predictions: Table, threshold: float | None = None) -> Table:
        """Connected components of the pairs at or above ``threshold`` (default: the spec's):
        a DuckDB table with ``cluster_id`` and ``unique_id`` for every input row."""
        local = DuckDBAPI(connection=self.con)  # the scored pairs are in DuckDB whichever engine scored them
        nodes = " UNION ".join(f"SELECT unique_id FROM {t}" for t in self.inputs)
        self.con.execute(f"CREATE OR REPLACE TABLE __ore_{self.spec.name}_nodes AS {nodes}")
        out = cluster_pairwise_predictions_at_threshold(
            local.register(f"__ore_{self.spec.name}_nodes", table_name=f"__ore_{self.spec.name}_nodes_in"),
            local.register(predictions.physical_name, table_name=f"{predictions.physical_name}_in"),
            db_api=local, node_id_column_name="unique_id",
            threshold_match_probability=self.spec.threshold if threshold is None else threshold)
        return Table(out.physical_name)


def train(
    spec: ModelSpec,
    scon: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    engine: Engine | None = None,
) -> TrainedModel:
    """Train ``spec`` without labels on ``tables`` (standard columns) in connection ``scon``.

    ``scon`` should be a connection of its own (an in-memory DuckDB): results land there, and
    with the DuckDB engine (the default) Splink creates its working tables there too.
    """
    engine = engine or DuckDBEngine()
    db_api = engine.db_api(scon)
    sdfs = [engine.register(db_api, scon, t, f"{spec.name}_{i}") for i, t in enumerate(tables)]
    linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], spec.settings_creator(), log_level=logging.ERROR)
    _quiet_splink()
    rules = spec.extra.get("prior_rules")
    if rules:
        try:
            linker.training.estimate_probability_two_random_records_match(
                [block_on(*r) for r in rules], recall=float(spec.extra.get("prior_recall", 0.8)))
        except ValueError:  # rules found more than the recall allows: keep the configured prior
            log.warning("prior estimate failed for %s; using %s", spec.name, spec.probability_two_random_records_match)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=spec.u_max_pairs, seed=spec.seed, num_chunks=int(spec.extra.get("u_num_chunks", 1)),
        min_count_per_level=None)
    linker = _floor_unobserved_u(linker, sdfs, spec.u_max_pairs)
    for cols in spec.training:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*cols), max_pairs=spec.em_max_pairs)
    return TrainedModel(spec, linker, db_api, scon, engine, tuple(tables))


def _floor_unobserved_u(linker: Linker, sdfs: list[Any], sampled_pairs: float) -> Linker:
    """Give a level the random sample never met a u of one in the sample, not none.

    On a large input a level such as "same postcode" is so rare among random pairs that a
    sample of a few hundred thousand pairs may not hold one; Splink then leaves its u unset
    and scores the level as if it said nothing, which would throw away the postcode on
    exactly the packages where it matters. One in ``sampled_pairs`` is an upper bound on
    what the sample showed, so the weight it gives is a lower bound on the evidence.
    """
    model = linker.misc.save_model_to_json()
    floor = 1.0 / max(sampled_pairs, 1.0)
    patched = False
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level") and level.get("u_probability") is None:
                level["u_probability"] = floor
                patched = True
    if not patched:
        return linker
    return Linker(sdfs if len(sdfs) > 1 else sdfs[0], model, log_level=logging.ERROR)


def _quiet_splink() -> None:
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)
