"""Vector index: a small interface and its FAISS implementation."""
