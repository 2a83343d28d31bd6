"""Plan a run before it starts: tokens per sample from the records (``tokens``), memory per GPU (``memory``)."""
