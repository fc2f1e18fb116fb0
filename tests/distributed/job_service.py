"""Beam's local portable job service, reachable at a given address (test infrastructure).

`python -m apache_beam.runners.portability.local_job_service_main` binds its
gRPC server (job API and artifact staging, one port) to `localhost` and tells
clients to stage artifacts at `localhost:<port>`
(LocalJobServicer.get_bind_address / get_service_address): a client on another
host can neither submit nor stage (`--stock-job-service` of run_distributed.py
shows it). This is the same servicer with both addresses set from --host. It
still runs every job itself (FnApiRunner) and starts the job's SDK workers
through the EXTERNAL worker pool named by the job's --environment_config; the
workers connect back to it on ports it picks, so the pool must be able to
reach this host on any port (here: the same host).

It also logs, for every job, the packages the client staged with it
("job <name> staged: ..."), which run_distributed.py checks.
"""
import argparse
import logging
import os
import signal
import sys
import time

from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability import local_job_service


def staged_names(pipeline: beam_runner_api_pb2.Pipeline):
    names = set()
    for env in pipeline.components.environments.values():
        for dep in env.dependencies:
            if dep.role_urn == common_urns.artifact_roles.STAGING_TO.urn:
                names.add(beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                    dep.role_payload).staged_name)
    return sorted(names)


class ReachableJobServicer(local_job_service.LocalJobServicer):
    def __init__(self, host: str, bind: str, staging_dir=None):
        super().__init__(staging_dir)
        self._host, self._bind = host, bind

    def get_bind_address(self):
        return self._bind

    def get_service_address(self):  # returned to clients as the artifact staging endpoint
        return self._host

    def create_beam_job(self, preparation_id, job_name, pipeline, options):
        logging.info("job %s staged: %s", job_name, ";".join(staged_names(pipeline)) or "-")
        return super().create_beam_job(preparation_id, job_name, pipeline, options)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True, help="address clients reach this service at")
    p.add_argument("--bind", default=None, help="bind address (default: --host)")
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--staging-dir", default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    servicer = ReachableJobServicer(a.host, a.bind or a.host, a.staging_dir)
    port = servicer.start_grpc_server(a.port)
    logging.info("job service ready at %s:%d (pid %d)", a.host, port, os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        servicer.stop()


if __name__ == "__main__":
    sys.exit(main())
