"""Per-worker log files for Beam SDK harness processes (test infrastructure only).

Put on PYTHONPATH of the worker pool in `make test-distributed`'s worker
namespace, with AP_WORKER_LOG_DIR set. Only SDK harness processes (`python -c
"...SdkHarness(...)"`, what `worker_pool_main` starts for an EXTERNAL
environment, or `sdk_worker_main`, what tests/distributed/boot.py execs) are
affected: each writes <dir>/sdk-<worker_id>-<pid>.log with its network
namespace, and for every ProcessBundleDescriptor it receives, the top-level
stage names of the transforms it will execute and the project modules
(`components.*`, `pipeline.*`) it has imported, with their files. Nothing in
the project is changed; Beam's BundleProcessor.__init__ is wrapped.
"""
import os


def _install() -> None:
    log_dir = os.environ.get("AP_WORKER_LOG_DIR")
    if not log_dir:
        return
    try:
        with open("/proc/self/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return
    # worker_pool_main starts `python -c "...SdkHarness(...)"`, or with
    # --container_executable a boot that execs sdk_worker_main.
    if "SdkHarness(" not in cmdline and "sdk_worker_main" not in cmdline:
        return
    import logging
    import re
    import socket
    import sys

    m = re.search(r'worker_id="([^"]+)"', cmdline)
    worker_id = m.group(1) if m else os.environ.get("WORKER_ID", "unknown")
    os.makedirs(log_dir, exist_ok=True)
    handler = logging.FileHandler(os.path.join(log_dir, f"sdk-{worker_id}-{os.getpid()}.log"))
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s {worker_id} pid=%(process)d %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    log = logging.getLogger("ap.worker")
    control = re.search(r'SdkHarness\("([^"]+)"', cmdline)
    log.info("SDK harness start: worker_id=%s netns=%s host=%s control=%s python=%s",
             worker_id, os.readlink("/proc/self/ns/net"), socket.gethostname(),
             control.group(1) if control else
             os.environ.get("CONTROL_API_SERVICE_DESCRIPTOR", "?").strip(), sys.executable)

    from apache_beam.runners.worker import bundle_processor

    original = bundle_processor.BundleProcessor.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            desc = self.process_bundle_descriptor
            names = [t.unique_name for t in desc.transforms.values() if t.unique_name]
            # ref_PCollection_* are the runner's own (fused/flattened) nodes.
            stages = sorted({n.split("/")[0] for n in names if not n.startswith("ref_")})
            project = sorted(
                f"{name}={getattr(mod, '__file__', None)}" for name, mod in list(sys.modules.items())
                if name.split(".")[0] in ("components", "pipeline") and mod is not None
                and "." in name)
            log.info("bundle descriptor %s: %d transforms, stages=%s", desc.id, len(names),
                     ";".join(stages))
            if project:
                log.info("project modules loaded: %s", ";".join(project))
        except Exception:  # noqa: BLE001 - never break the worker for a log line
            log.exception("could not describe the bundle")

    bundle_processor.BundleProcessor.__init__ = __init__


try:
    _install()
except Exception:  # noqa: BLE001
    pass
