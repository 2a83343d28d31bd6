"""``fastvlm-video serve``: a small web page and an OpenAI-compatible API around one ``Predictor``.

Optional extra ``serve`` (FastAPI + uvicorn): ``pip install 'fastvlm-video[serve]'``.
"""
