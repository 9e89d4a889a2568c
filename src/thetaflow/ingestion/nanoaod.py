"""NanoAOD versions: their branch maps, detection from the branches present, and the CMS
recipes that stand in for what a version lacks.

The branch map of each version is data, in ``resources/nanoaod/<version>.yaml``: which
branches identify it, its MET collection, its b-tag discriminant with the working points of
its era (and their source), and how the jet ID and the pile-up ID are obtained. Ingestion
works on *logical* jet fields: the selection's expressions name ``jetId``, ``puId`` and the
b-tag score ``btag`` whatever the version, and :class:`BranchMap` says which file branches
supply them:

* ``btag``: the version's discriminant (DeepJet ``btagDeepFlavB``, PNet ``btagPNetB``, UParT
  ``btagUParTAK4B``);
* ``puId``: the stored branch (Run 2), or, in Run 3 where PUPPI jets carry no pile-up ID,
  :data:`PILEUP_ID_NOT_APPLIED` for every jet (all working points passed: the requirement is
  not applied, as CMS's Run 3 recipes do);
* ``jetId``: the stored branch, or (v15, which dropped it) :func:`run3_jet_id`, JME's tight
  and tightLepVeto criteria recomputed from the energy fractions and multiplicities.

The MET read is ``<met>_pt``/``<met>_phi`` of the version's collection (``MET``, ``PuppiMET``
or ``PFMET``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from thetaflow.core.jagged import Objects

#: ``nanoaod.version`` values: ``auto`` or a branch map in :data:`BRANCH_MAP_DIR`
AUTO = "auto"
#: the NanoAOD puId value with every working point passed (bits loose, medium, tight)
PILEUP_ID_NOT_APPLIED = 7
#: NanoAOD's jetId bits: 2 = tight, 4 = tightLepVeto (a tightLepVeto jet has both: 6)
JET_ID_TIGHT, JET_ID_TIGHT_LEP_VETO = 2, 4
#: jet fields :func:`run3_jet_id` reads
RUN3_JET_ID_INPUTS = (
    "eta",
    "neHEF",
    "neEmEF",
    "chHEF",
    "chEmEF",
    "muEF",
    "chMultiplicity",
    "neMultiplicity",
)


def _branch_map_dir() -> Path:
    """``resources/nanoaod`` of the checkout the library runs from (src/thetaflow/ingestion
    is three levels below the project root), else of the working directory."""
    beside = Path(__file__).resolve().parents[3] / "resources" / "nanoaod"
    return beside if beside.is_dir() else Path.cwd() / "resources" / "nanoaod"


#: where the branch maps live, one ``<version>.yaml`` each
BRANCH_MAP_DIR = _branch_map_dir()


class NanoAODVersionError(ValueError):
    """An unknown version, a forced version the file contradicts, or a file no version
    matches. Ingestion turns it into an IngestError naming the sample and the file."""


@dataclass(frozen=True)
class BTagTagger:
    """A version's b-tag discriminant: its name, jet field, era and working points."""

    tagger: str
    branch: str
    era: str
    working_points: Mapping[str, float]


@dataclass(frozen=True)
class BranchMap:
    """One NanoAOD version's branch map (``resources/nanoaod/<version>.yaml``)."""

    version: str
    description: str
    present: tuple[str, ...]
    absent: tuple[str, ...]
    met: str
    jet_id: str
    pileup_id: str
    btag: BTagTagger

    @classmethod
    def from_yaml(cls, path: Path) -> BranchMap:
        """Read and check one branch map."""
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            out = cls(
                version=str(doc["version"]),
                description=str(doc["description"]),
                present=tuple(doc["detect"]["present"]),
                absent=tuple(doc["detect"]["absent"]),
                met=str(doc["met"]),
                jet_id=str(doc["jet"]["jet_id"]),
                pileup_id=str(doc["jet"]["pileup_id"]),
                btag=BTagTagger(
                    tagger=str(doc["btag"]["tagger"]),
                    branch=str(doc["btag"]["branch"]),
                    era=str(doc["btag"]["era"]),
                    working_points={k: float(v) for k, v in doc["btag"]["working_points"].items()},
                ),
            )
        except (KeyError, TypeError) as err:
            raise NanoAODVersionError(f"branch map {path} is malformed: {err!r}") from err
        if out.jet_id not in ("branch", "recompute") or out.pileup_id not in ("branch", "absent"):
            raise NanoAODVersionError(
                f"branch map {path}: jet.jet_id must be branch|recompute and jet.pileup_id "
                f"branch|absent, got {out.jet_id!r}, {out.pileup_id!r}"
            )
        if set(out.btag.working_points) != {"loose", "medium", "tight"}:
            raise NanoAODVersionError(f"branch map {path}: btag.working_points: loose/medium/tight")
        return out

    def mismatch(self, keys: Collection[str]) -> list[str]:
        """Why a file with branches ``keys`` is not of this version (empty: it is)."""
        return [f"lacks {b}" for b in self.present if b not in keys] + [
            f"has {b}" for b in self.absent if b in keys
        ]

    @property
    def met_branches(self) -> tuple[str, str]:
        """The MET branches read: p_T and φ of the version's collection."""
        return f"{self.met}_pt", f"{self.met}_phi"

    def jet_sources(self, fields: Iterable[str]) -> list[str]:
        """The file's jet fields that supply the logical ``fields`` (order kept, no repeats):
        ``btag`` is the tagger's branch, a recomputed ``jetId`` its inputs, an absent
        ``puId`` nothing."""
        out: list[str] = []
        for name in fields:
            if name == "btag":
                sources: Iterable[str] = (self.btag.branch,)
            elif name == "jetId" and self.jet_id == "recompute":
                sources = RUN3_JET_ID_INPUTS
            elif name == "puId" and self.pileup_id == "absent":
                sources = ()
            else:
                sources = (name,)
            out += [s for s in sources if s not in out]
        return out

    def logical_jets(self, jets: Objects, fields: Iterable[str]) -> Objects:
        """``jets`` (read with :meth:`jet_sources` and any extra fields) with the logical
        ``fields`` added: ``btag``, and ``jetId``/``puId`` where a recipe makes them."""
        wanted = set(fields)
        added = {"btag": jets[self.btag.branch]} if "btag" in wanted else {}
        if "jetId" in wanted and self.jet_id == "recompute":
            added["jetId"] = run3_jet_id(jets.columns)
        if "puId" in wanted and self.pileup_id == "absent":
            added["puId"] = np.full(len(jets.event_index), PILEUP_ID_NOT_APPLIED, np.int32)
        return jets.with_columns(added) if added else jets

    def notes(self, jet_fields: Collection[str]) -> list[str]:
        """How this version differs from Run 2 for a selection reading ``jet_fields``: one
        line per recipe applied (logged once per sample)."""
        out = []
        if "puId" in jet_fields and self.pileup_id == "absent":
            out.append(
                "no Jet_puId (Run 3 PUPPI jets have no pile-up ID): the puId requirement of "
                "selection.objects.jet is not applied (puId = 7, every working point passed)"
            )
        if "jetId" in jet_fields and self.jet_id == "recompute":
            out.append(
                "no Jet_jetId: recomputed from the jet energy fractions and multiplicities with "
                "JME's Run 3 tight/tightLepVeto criteria for AK4 PUPPI jets (JetID13p6TeV)"
            )
        if self.met != "MET":
            out.append(f"MET read from {self.met}_pt/{self.met}_phi")
        wp = self.btag.working_points
        out.append(
            f"b-tag score 'btag' is {self.btag.tagger} (Jet_{self.btag.branch}); working "
            f"points of {self.btag.era}: loose {wp['loose']}, medium {wp['medium']}, tight "
            f"{wp['tight']} (btag_wp_loose/medium/tight)"
        )
        return out


def run3_jet_id(jets: Mapping[str, np.ndarray]) -> np.ndarray:
    """NanoAOD's ``jetId`` recomputed for Run 3 AK4 PUPPI jets (2 = tight, 6 = tight and
    tightLepVeto, 0 = neither), from the columns :data:`RUN3_JET_ID_INPUTS`.

    JME's criteria (twiki CMS/JetID13p6TeV, the recipe for NanoAOD v15, which dropped the
    branch; the same numbers as the ``AK4PUPPI_Tight``/``TightLeptonVeto`` entries of JME's
    ``jetid.json.gz``), with NHF/NEMF/CHF/CEMF/MUF the neutral-hadron, neutral-EM,
    charged-hadron, charged-EM and muon energy fractions and CHM/NM the charged and neutral
    multiplicities:

    * tight, |η| ≤ 2.6: NHF < 0.99, NEMF < 0.9, CHM + NM > 1, CHF > 0.01, CHM > 0;
      2.6 < |η| ≤ 2.7: NHF < 0.9, NEMF < 0.99; 2.7 < |η| ≤ 3.0: NHF < 0.99;
      |η| > 3.0: NEMF < 0.4, NM ≥ 2;
    * tightLepVeto: tight and, for |η| ≤ 2.7, MUF < 0.8 and CEMF < 0.8.
    """
    eta = np.abs(jets["eta"])
    nhf, nemf, chf = jets["neHEF"], jets["neEmEF"], jets["chHEF"]
    chm = jets["chMultiplicity"].astype(np.int64)
    nm = jets["neMultiplicity"].astype(np.int64)
    central = eta <= 2.6
    tight = np.where(
        central,
        (nhf < 0.99) & (nemf < 0.9) & (chm + nm > 1) & (chf > 0.01) & (chm > 0),
        np.where(
            eta <= 2.7,
            (nhf < 0.9) & (nemf < 0.99),
            np.where(eta <= 3.0, nhf < 0.99, (nemf < 0.4) & (nm >= 2)),
        ),
    )
    lepton_veto = tight & ((eta > 2.7) | ((jets["muEF"] < 0.8) & (jets["chEmEF"] < 0.8)))
    return (JET_ID_TIGHT * tight + JET_ID_TIGHT_LEP_VETO * lepton_veto).astype(np.int32)


@cache
def branch_maps(directory: Path = BRANCH_MAP_DIR) -> dict[str, BranchMap]:
    """Every branch map of ``directory``, by version."""
    maps = {}
    for path in sorted(directory.glob("*.yaml")):
        branch_map = BranchMap.from_yaml(path)
        if branch_map.version != path.stem:
            raise NanoAODVersionError(f"branch map {path} declares version {branch_map.version}")
        maps[branch_map.version] = branch_map
    if not maps:
        raise NanoAODVersionError(f"no NanoAOD branch map (<version>.yaml) in {directory}")
    return maps


def known_versions() -> list[str]:
    """The versions with a branch map, sorted by number (v9, v12, v15)."""
    return sorted(branch_maps(), key=lambda v: (len(v), v))


def resolve_version(requested: str, keys: Collection[str]) -> BranchMap:
    """The branch map of a file with branches ``keys``: the one ``auto`` detects, or the
    ``requested`` one after checking that the file agrees with it.

    Raises:
        NanoAODVersionError: ``requested`` is not ``auto`` or a known version; no known
            version matches the file (``auto``); the file contradicts ``requested``.
    """
    maps = branch_maps()
    if requested != AUTO and requested not in maps:
        raise NanoAODVersionError(
            f"unknown NanoAOD version '{requested}' (nanoaod.version: {AUTO} or one of "
            f"{', '.join(known_versions())}, the branch maps in {BRANCH_MAP_DIR})"
        )
    matching = [v for v in known_versions() if not maps[v].mismatch(keys)]
    if requested == AUTO:
        if len(matching) == 1:
            return maps[matching[0]]
        why = "; ".join(f"{v}: {', '.join(maps[v].mismatch(keys))}" for v in known_versions())
        raise NanoAODVersionError(
            f"NanoAOD version not recognised: matches "
            f"{' and '.join(matching) if matching else 'none'} of the known versions ({why}); "
            "set nanoaod.version or add a branch map"
        )
    problems = maps[requested].mismatch(keys)
    if problems:
        detected = f"; its branches are those of {' and '.join(matching)}" if matching else ""
        raise NanoAODVersionError(
            f"nanoaod.version is '{requested}' but the file contradicts it: "
            f"{', '.join(problems)}{detected}"
        )
    return maps[requested]
