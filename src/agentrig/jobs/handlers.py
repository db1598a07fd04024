"""The job handlers: what each job type does.

``index_document`` indexes one uploaded document (idempotent: deterministic chunk ids, a
document deleted meanwhile fails the job at once). ``process_chat`` is added by the
server, which owns the agents it runs.
"""

from __future__ import annotations

from agentrig.jobs.runner import Handler, PermanentJobError
from agentrig.knowledge.indexer import DocumentGone
from agentrig.knowledge.service import Knowledge
from agentrig.store.jobs import Job

INDEX_DOCUMENT = "index_document"
PROCESS_CHAT = "process_chat"


def knowledge_handlers(knowledge: Knowledge) -> dict[str, Handler]:
    async def index_document(job: Job) -> dict:
        try:
            report = await knowledge.index(job.tenant, str(job.payload["document_id"]))
        except DocumentGone as exc:
            raise PermanentJobError(str(exc)) from None
        except KeyError:
            raise PermanentJobError("index_document needs a document_id") from None
        return report.to_json()

    return {INDEX_DOCUMENT: index_document}
