"""Where the project's shared material (sample scenario, reference scorer) is: ``../shared`` beside
the repository, as the developers and CI have it, or ``ORE_SHARED``."""

import os
from pathlib import Path

SHARED = Path(os.environ.get("ORE_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
SAMPLES = SHARED / "samples"
SAMPLE = SAMPLES / "public-1"
SCORER = SHARED / "eval" / "score.py"
