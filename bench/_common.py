"""What the benchmark scripts share: a log that prints and keeps its lines, and writing `<out>.md` and `<out>.json`."""
import json
import platform
import sys
from pathlib import Path

import torch

from matdl_nb.core import get_device


class Log:
    "Print and keep every line, so the full output can be written to the results file."
    def __init__(self, script: str, argv=None):
        self.lines = []
        self(f"# bench/{Path(script).name} " + " ".join(sys.argv[1:] if argv is None else argv))
        self(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
             f"device {get_device()}, torch {torch.__version__}, python {sys.version.split()[0]}")

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.lines.append(line)

    def save(self, out, results: dict):
        "Write the full output to `<out>.md` and `results` to `<out>.json` (nothing when `out` is None)."
        if not out: return
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text("\n".join(self.lines) + "\n")
        out.with_suffix(".json").write_text(json.dumps(results, indent=1))
