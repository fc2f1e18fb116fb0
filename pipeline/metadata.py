"""Where ML Metadata lives: SQLite under --output by default, MySQL for shared
deployments (several schedulers/users reading one lineage and one cache).

`--metadata-mysql HOST[:PORT]/DATABASE` (config `metadata_mysql`) selects
MySQL; the account comes from the environment only, never from the config
(the config is copied into component properties and the compiled spec):

    ANOMALY_PIPELINE_MYSQL_USER       (default root)
    ANOMALY_PIPELINE_MYSQL_PASSWORD   (default empty)
"""
import os
import re
from typing import Mapping, NamedTuple, Optional

MYSQL_USER_ENV = "ANOMALY_PIPELINE_MYSQL_USER"
MYSQL_PASSWORD_ENV = "ANOMALY_PIPELINE_MYSQL_PASSWORD"
DEFAULT_MYSQL_PORT = 3306
_MYSQL = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?"
                    r"/(?P<db>[A-Za-z0-9_$-]+)$")


class MySQLTarget(NamedTuple):
    host: str
    port: int
    database: str


def mysql_problem(spec: str) -> Optional[str]:
    """Why `spec` is not HOST[:PORT]/DATABASE, or None."""
    m = _MYSQL.match(spec or "")
    if not m:
        return (f"metadata_mysql '{spec}' must be HOST[:PORT]/DATABASE, e.g. "
                f"mysql.internal:3306/tfx_metadata")
    if m.group("port") and not 0 < int(m.group("port")) < 65536:
        return f"metadata_mysql '{spec}': port must be 1-65535"
    return None


def parse_mysql(spec: str) -> MySQLTarget:
    problem = mysql_problem(spec)
    if problem:
        raise ValueError(problem)
    m = _MYSQL.match(spec)
    assert m is not None
    return MySQLTarget(m.group("host").strip("[]"), int(m.group("port") or DEFAULT_MYSQL_PORT),
                       m.group("db"))


def connection_config(cfg, environ: Optional[Mapping[str, str]] = None):
    """The `metadata_store_pb2.ConnectionConfig` for `cfg` (a PipelineConfig)."""
    from tfx.orchestration import metadata

    if not getattr(cfg, "metadata_mysql", None):
        return metadata.sqlite_metadata_connection_config(cfg.metadata_path)
    env = os.environ if environ is None else environ
    t = parse_mysql(cfg.metadata_mysql)
    return metadata.mysql_metadata_connection_config(
        host=t.host, port=t.port, database=t.database,
        username=env.get(MYSQL_USER_ENV, "root"), password=env.get(MYSQL_PASSWORD_ENV, ""))


def describe(cfg) -> str:
    """Where the metadata is, without the password (for logs and the summary)."""
    if getattr(cfg, "metadata_mysql", None):
        t = parse_mysql(cfg.metadata_mysql)
        return f"mysql://{t.host}:{t.port}/{t.database}"
    return cfg.metadata_path
