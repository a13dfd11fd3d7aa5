"""What the benchmark scripts share: a log that prints and keeps its lines, and writing `<out>.md` and `<out>.json`."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from matdl_nb.core import atomic_write, get_device


def machine() -> dict:
    "Where a benchmark ran: processor, torch threads, device and the GPU's name, versions, and the commit of the code."
    commit = os.environ.get("MATDL_BENCH_COMMIT")  # set it where the code travels without its git history
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                                    cwd=Path(__file__).parent).stdout.strip() or None
        except (OSError, subprocess.SubprocessError): commit = None
    return dict(processor=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads(),
                device=str(get_device()), gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                torch=torch.__version__, python=sys.version.split()[0], commit=commit)


class Log:
    "Print and keep every line, so the full output can be written to the results file."
    def __init__(self, script: str, argv=None):
        self.lines, self.machine = [], machine()
        m = self.machine
        self(f"# bench/{Path(script).name} " + " ".join(sys.argv[1:] if argv is None else argv))
        self(f"machine: {m['processor']}, {m['torch_threads']} torch threads, device {m['device']}"
             f"{' (' + m['gpu'] + ')' if m['gpu'] else ''}, torch {m['torch']}, python {m['python']}, code at commit {m['commit']}")

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.lines.append(line)

    def save(self, out, results: dict):
        "Write the full output to `<out>.md` and `results`, with the machine, to `<out>.json` (nothing when `out` is None)."
        if not out: return
        out = Path(out)
        with atomic_write(out.with_suffix(".md")) as tmp: tmp.write_text("\n".join(self.lines) + "\n")
        with atomic_write(out.with_suffix(".json")) as tmp: tmp.write_text(json.dumps({**results, "machine": self.machine}, indent=1))
