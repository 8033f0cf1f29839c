"""Same config, same seed, same numbers: on an idle machine and beside a CPU-bound process.

:func:`assert_reproducible_beside_load` runs an experiment again while another process keeps a
core busy, and checks that ``result.json`` is the same apart from the wall-clock fields
(:data:`piami.lab.result.WALL_CLOCK_KEYS`). Each experiment's test calls it with the result of its
own quick run, so the check costs one more quick run per experiment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from piami._io import to_jsonable
from piami.lab import Result
from piami.lab.result import WALL_CLOCK_KEYS

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 3600: pass\n"


#: Not compared: the wall clock, and the code fingerprint (while developers edit sources in the
#: same checkout during a test, it changes without the science changing; CI's code is fixed).
IGNORED = (*WALL_CLOCK_KEYS, "code", "code_git")


def science(result: Result) -> str:
    """``result.json`` without its wall-clock and code fields, as canonical JSON text."""
    d = {k: v for k, v in result.to_dict().items() if k not in IGNORED}
    return json.dumps(to_jsonable(d), sort_keys=True)


def assert_reproducible_beside_load(run: Any, first: Result) -> Result:
    """Run ``run()`` beside a CPU-bound process; its result must equal ``first`` but for timing."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        again = run()
    finally:
        busy.kill()
        busy.wait()
    a, b = science(first), science(again)
    if a != b:
        da, db = json.loads(a), json.loads(b)
        diff = [k for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)]
        rows = [
            (x["name"], x["measured"], y["measured"])
            for x, y in zip(da["comparisons"], db["comparisons"], strict=False)
            if x != y
        ]
        raise AssertionError(f"results differ beside a busy process in {diff}; rows {rows[:5]}")
    return again
