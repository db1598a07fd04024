"""The job handlers: what each job type does.

``index_document`` indexes one uploaded document (idempotent: deterministic chunk ids, a
document deleted meanwhile fails the job at once). ``process_chat`` answers a message of
the knowledge chat (``POST /api/v1/chat/async``); its result is the body the synchronous
route gives. A chat retried after a crash may add the exchange to its conversation a
second time only if the crash fell between the model's answer and the job's end.
"""

from __future__ import annotations

from agentrig.jobs.runner import Handler, PermanentJobError
from agentrig.knowledge.indexer import DocumentGone
from agentrig.knowledge.service import Knowledge
from agentrig.rag.chat import KnowledgeChat
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


def chat_handlers(chat: KnowledgeChat) -> dict[str, Handler]:
    async def process_chat(job: Job) -> dict:
        payload = job.payload
        try:
            answer = await chat.answer(
                job.tenant,
                str(payload["message"]),
                conversation_id=payload.get("conversation_id"),
                kb=payload.get("kb"),
                agent_id=payload.get("agent_id"),
            )
        except (KeyError, ValueError, LookupError) as exc:
            raise PermanentJobError(str(exc)) from None
        return answer.to_json()

    return {PROCESS_CHAT: process_chat}


def job_handlers(chat: KnowledgeChat) -> dict[str, Handler]:
    """Every job type's handler: what the in-process queue and ``agentrig worker`` run."""
    return knowledge_handlers(chat.knowledge) | chat_handlers(chat)
