"""The tunable parts of VIHF verification (docs/vihf.md §7; the node's own choices there stay configurable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from identifiers import INS_NIR_OIDS
from pki._vihf_model import AUTOMATON_SYSTEM, PROFESSION_SYSTEM


@dataclass(frozen=True)
class VihfPolicy:
    max_age: timedelta = timedelta(seconds=300)      # after IssueInstant, other modes (docs/vihf.md §7 step 10)
    air_max_age: timedelta = timedelta(seconds=30)   # INDIRECTE_RENFORCEE [V EX_AIR-040]
    clock_skew: timedelta = timedelta(seconds=60)    # tolerated on both ends of the window
    strict_nameid: bool = True                       # direct mode: NameID must equal the signer CN
    accept_sha1: bool = False                        # 2019–2020 GIE samples sign with rsa-sha1
    profession_code_systems: frozenset[str] = frozenset({PROFESSION_SYSTEM, AUTOMATON_SYSTEM})
    ins_oids: frozenset[str] = INS_NIR_OIDS
