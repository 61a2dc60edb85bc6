"""rewardstack server side: the gateway, its scorers, the worker pool and the model server."""
