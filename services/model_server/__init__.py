"""The neural model server: helpfulness and safety models behind a dynamic batcher.

`create_model_app(settings)` serves them over HTTP (`rewardstack models`); `ServedModels` is the
same thing in-process, which the gateway uses when no model server is configured.
"""
