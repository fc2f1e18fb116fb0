#!/usr/bin/env python
"""A minimal Python stand-in for the Beam SDK container's `boot` (test infrastructure).

`worker_pool_main --container_executable=<this>` runs it for every SDK worker
with the container contract's flags (--id, --provision_endpoint,
--artifact_endpoint, --logging_endpoint, --control_endpoint). Like the Go boot
of the apache/beam_python SDK image it: fetches the provision info, retrieves
the job's staged artifacts, pip-installs the staged packages
(extra_packages.txt, then workflow.tar.gz from --setup_file) with --no-deps
into a directory put first on PYTHONPATH (cached by content, so later workers
on this host reuse it), and execs `apache_beam.runners.worker.sdk_worker_main`.
Unlike it, it installs no requirements file and no SDK tarball: the worker's
Python environment must already hold Beam/TFX and the project's dependencies
(as the SDK image, or the lock file, would).

So a worker host without this project installed gets it from the sdist the
client staged (`--extra_package`, pipeline/beam_staging.py), which is what
Dataflow and Flink/Spark with the SDK container do.
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    for flag in ("id", "provision_endpoint", "artifact_endpoint", "logging_endpoint",
                 "control_endpoint"):
        p.add_argument(f"--{flag}", required=flag in ("id", "provision_endpoint",
                                                       "control_endpoint"))
    p.add_argument("--semi_persistent_directory", default=None)
    a, _ = p.parse_known_args(argv)
    root = os.environ.get("AP_BOOT_DIR") or "/tmp/ap-boot"
    log_dir = os.environ.get("AP_WORKER_LOG_DIR") or root
    os.makedirs(log_dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(log_dir, f"boot-{a.id}-{os.getpid()}.log"), level=logging.INFO,
        format=f"%(asctime)s boot {a.id} pid=%(process)d %(levelname)s %(message)s")
    log = logging.getLogger("ap.boot")
    started = time.time()

    import grpc
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import (beam_artifact_api_pb2, beam_artifact_api_pb2_grpc,
                                             beam_provision_api_pb2,
                                             beam_provision_api_pb2_grpc, beam_runner_api_pb2,
                                             endpoints_pb2)
    from google.protobuf import json_format, text_format

    meta = [("worker_id", a.id)]
    info = beam_provision_api_pb2_grpc.ProvisionServiceStub(
        grpc.insecure_channel(a.provision_endpoint)).GetProvisionInfo(
        beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=meta).info
    artifact_endpoint = info.artifact_endpoint.url or a.artifact_endpoint
    control = info.control_endpoint.url or a.control_endpoint
    logging_endpoint = info.logging_endpoint.url or a.logging_endpoint
    log.info("provision: %d dependencies, control=%s artifacts=%s netns=%s",
             len(info.dependencies), control, artifact_endpoint,
             os.readlink("/proc/self/ns/net"))

    staged = os.path.join(root, "staged", a.id)
    os.makedirs(staged, exist_ok=True)
    retrieval = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(
        grpc.insecure_channel(artifact_endpoint, options=[
            ("grpc.max_receive_message_length", -1)]))
    files = {}
    for dep in info.dependencies:
        if dep.role_urn != common_urns.artifact_roles.STAGING_TO.urn:
            log.warning("skipping artifact with role %s", dep.role_urn)
            continue
        name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
            dep.role_payload).staged_name
        path = os.path.join(staged, os.path.basename(name))
        digest = hashlib.sha256()
        with open(path, "wb") as f:
            for chunk in retrieval.GetArtifact(
                    beam_artifact_api_pb2.GetArtifactRequest(artifact=dep), metadata=meta):
                f.write(chunk.data)
                digest.update(chunk.data)
        files[os.path.basename(name)] = (path, digest.hexdigest())
        log.info("retrieved %s (%d bytes)", name, os.path.getsize(path))

    to_install = []
    if "extra_packages.txt" in files:
        with open(files["extra_packages.txt"][0], encoding="utf-8") as f:
            to_install += [line.strip() for line in f if line.strip()]
    if "workflow.tar.gz" in files:
        to_install.append("workflow.tar.gz")
    if "requirements.txt" in files:
        log.warning("requirements.txt staged but not installed by this boot")
    site_dirs = []
    for name in to_install:
        if name not in files:
            log.warning("%s listed but not staged", name)
            continue
        path, sha = files[name]
        target = os.path.join(root, "site", sha[:16])
        if not os.path.isdir(target):
            tmp = f"{target}.tmp-{os.getpid()}"
            t0 = time.time()
            proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                                   "--no-build-isolation", "--no-compile", "--target", tmp, path],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                log.error("pip install %s failed: %s", name, proc.stderr[-2000:])
                return 1
            try:
                os.rename(tmp, target)
            except OSError:  # another worker installed it meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
            log.info("installed %s into %s in %.1f s", name, target, time.time() - t0)
        else:
            log.info("%s already installed in %s", name, target)
        site_dirs.append(target)

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(site_dirs + [x for x in [env.get("PYTHONPATH")] if x])
    env["CONTROL_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(
        endpoints_pb2.ApiServiceDescriptor(url=control))
    if logging_endpoint:
        env["LOGGING_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(
            endpoints_pb2.ApiServiceDescriptor(url=logging_endpoint))
    env["PIPELINE_OPTIONS"] = json.dumps(json_format.MessageToDict(info.pipeline_options))
    env["SEMI_PERSISTENT_DIRECTORY"] = a.semi_persistent_directory or staged
    env["WORKER_ID"] = a.id
    env["RUNNER_CAPABILITIES"] = " ".join(info.runner_capabilities)
    log.info("boot done in %.1f s; exec sdk_worker_main, PYTHONPATH=%s", time.time() - started,
             env["PYTHONPATH"])
    logging.shutdown()
    os.execve(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"],
              env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
