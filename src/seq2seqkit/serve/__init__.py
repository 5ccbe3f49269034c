"""The HTTP server (``seq2seqkit serve``): a JSON API with dynamic batching and a page showing
outputs and attention, over the public Pipeline. Needs FastAPI and uvicorn (package dependencies);
``import seq2seqkit`` does not load it."""
