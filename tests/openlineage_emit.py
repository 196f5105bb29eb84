"""Emits OpenLineage events to firewatch with the real OpenLineage Python
client, unchanged: its HTTP transport, an API key as the bearer token, and
gzip compression for some events. Used by functions/pipelines/tests.

usage: openlineage_emit.py <firewatch base URL> <api key> <run id 1> <run id 2>
"""

import sys

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    error_message_run,
    job_type_job,
    nominal_time_run,
    ownership_job,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"


@attr.define
class FirewatchCostRunFacet(RunFacet):
    """A custom run facet: what the run cost."""

    amount: float
    currency: str


def client(url, key, gzip=False):
    config = HttpConfig(
        url=url,
        auth=ApiKeyTokenProvider({"api_key": key}),
        compression=HttpCompression.GZIP if gzip else None,
        retry={"total": 0},
    )
    return OpenLineageClient(transport=HttpTransport(config))


def main():
    url, key, run1, run2 = sys.argv[1:5]
    plain, zipped = client(url, key), client(url, key, gzip=True)
    job = Job(
        namespace="airflow",
        name="etl.orders",
        facets={
            "ownership": ownership_job.OwnershipJobFacet(
                owners=[ownership_job.Owner(name="team:data")], producer=PRODUCER
            ),
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="AIRFLOW", jobType="TASK", producer=PRODUCER
            ),
        },
    )
    inputs = [InputDataset(namespace="postgres://db:5432", name="shop.public.orders")]
    outputs = [OutputDataset(namespace="s3://lake", name="mart/orders")]
    nominal = nominal_time_run.NominalTimeRunFacet(
        nominalStartTime="2026-11-30T06:00:00Z", producer=PRODUCER
    )
    plain.emit(
        RunEvent(
            eventType=RunState.START,
            eventTime="2026-11-30T06:00:05.120Z",
            run=Run(runId=run1, facets={"nominalTime": nominal}),
            job=job,
            inputs=inputs,
            outputs=[],
            producer=PRODUCER,
        )
    )
    zipped.emit(
        RunEvent(
            eventType=RunState.FAIL,
            eventTime="2026-11-30T06:07:41.003Z",
            run=Run(
                runId=run1,
                facets={
                    "errorMessage": error_message_run.ErrorMessageRunFacet(
                        message="psycopg2.errors.UndefinedTable: relation \"orders_v2\" does not exist",
                        programmingLanguage="PYTHON",
                        producer=PRODUCER,
                    )
                },
            ),
            job=job,
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )
    )
    zipped.emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime="2026-11-30T07:12:00Z",
            run=Run(
                runId=run2,
                facets={"firewatch_cost": FirewatchCostRunFacet(amount=4.25, currency="USD", producer=PRODUCER)},
            ),
            job=job,
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )
    )


if __name__ == "__main__":
    main()
