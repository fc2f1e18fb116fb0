"""Where the Beam work ran, from the worker host's own logs.

- The job service's log (tests/distributed/job_service.py): one "Completed job
  in S seconds with state DONE" per Beam job (FnApiRunner's line), and what the
  client staged with each job.
- The SDK harnesses' logs (tests/distributed/worker_site/sitecustomize.py, one
  file per harness): its network namespace, the top-level stages of every
  bundle descriptor it was sent, and the files of the project modules it had
  imported by then.
"""
import glob
import os
import re
from typing import Dict, List

# Top-level Beam stage names each distributed Beam job must show in the workers' logs.
EXPECTED_STAGES: Dict[str, List[str]] = {
    "StatisticsGen": ["GenerateStatistics"],
    "Transform": ["Analyze", "WriteTransformFn"],
    "AnomalyEvaluator": ["Score_current"],
    "score": ["Read", "Score", "Write"],
}


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def job_service(log_path: str) -> dict:
    text = _read(log_path)
    jobs = re.findall(r"Completed job in ([\d.]+) seconds with state (\w+)", text)
    staged = [line.split(";") if line != "-" else []
              for line in re.findall(r" staged: (\S+)\s*$", text, re.M)]
    return {"jobs": [{"seconds": float(s), "state": st} for s, st in jobs],
            "staged_per_job": staged}


def workers(log_dir: str, worker_netns: str) -> dict:
    found, stages, project_files = [], set(), set()
    for path in sorted(glob.glob(os.path.join(log_dir, "sdk-*.log"))):
        text = _read(path)
        m = re.search(r"SDK harness start: worker_id=(\S+) netns=(\S+)", text)
        own = sorted({s for line in re.findall(r"stages=(.*)", text) for s in line.split(";")})
        stages.update(own)
        for line in re.findall(r"project modules loaded: (.*)", text):
            project_files.update(x.split("=", 1)[1] for x in line.split(";") if "=" in x)
        found.append({"log": os.path.basename(path), "worker_id": m.group(1) if m else None,
                      "netns": m.group(2) if m else None,
                      "in_worker_netns": bool(m) and m.group(2) == worker_netns,
                      "bundle_descriptors": text.count("bundle descriptor "), "stages": own})
    return {"workers": found, "stages": sorted(stages),
            "project_module_files": sorted(project_files)}


def missing_stages(stages: List[str]) -> Dict[str, List[str]]:
    missing = {job: [s for s in want if not any(x.startswith(s) for x in stages)]
               for job, want in EXPECTED_STAGES.items()}
    return {k: v for k, v in missing.items() if v}
