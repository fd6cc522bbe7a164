"""Writing the knowledge base: documents, Markdown, chunks, embeddings, vector indexes."""
