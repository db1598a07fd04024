"""Knowledge (RAG): uploaded documents are kept as blobs, converted to text, split into
chunks, embedded through the LLM boundary and indexed for hybrid (dense and keyword)
retrieval, so that agents and the server can answer from a tenant's own documents.
"""
