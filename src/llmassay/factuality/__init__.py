"""Hallucination and retrieval: an offline country KB, judge-free fact verification, RAG indexes."""
